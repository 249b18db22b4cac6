package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// SignaturePayload builds the string a merchant backend signs for js_require_signature:
// key|amount|CURRENCY|customer_key, e.g. "order_9|25.00|USD|cust_7". The amount is
// written with exactly the currency's minor digits so both sides produce the same text.
func SignaturePayload(key string, amount Money, customerKey string) string {
	return key + "|" + amount.String() + "|" + amount.Currency + "|" + customerKey
}

// VerifySignature reports whether hexSig is the hex HMAC-SHA256 of payload under secret.
// An empty secret verifies nothing: anyone could compute a signature under it.
func VerifySignature(secret, payload, hexSig string) bool {
	if secret == "" || len(hexSig) != 2*sha256.Size {
		return false
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(payload))
	return hmac.Equal(sig, mac.Sum(nil))
}
