package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// randomToken returns n random bytes as lower-case base32.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return strings.ToLower(b32.EncodeToString(b))
}

// newProgramID is public and goes into merchants' pages: short, but 50
// random bits make it unguessable enough to not be enumerated.
func newProgramID() string { return randomToken(7)[:10] }

func newAPIKey() string        { return "pk_" + randomToken(20) }
func newSigningSecret() string { return "ss_" + randomToken(20) }
func newWebhookSecret() string { return "whsec_" + randomToken(24) }
func newAdminToken() string    { return "pat_" + randomToken(20) }

// hashSecret hashes a high-entropy secret for storage. A fast hash is
// enough: the secrets are random, not human passwords.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// secretMatches compares a presented secret with a stored hash in constant
// time.
func secretMatches(presented, storedHash string) bool {
	if presented == "" || storedHash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashSecret(presented)), []byte(storedHash)) == 1
}
