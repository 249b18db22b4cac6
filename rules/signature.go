package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignaturePayload builds the string a merchant backend signs for js_require_signature:
// key|amount|CURRENCY|customer_key|product_id|product_type, every field that decides the
// reward, e.g. "order_9|25.00|USD|cust_7|pro|monthly", or "order_9|25.00|USD|cust_7||"
// without products. The amount is written with exactly the currency's minor digits and
// the code in upper case, so both sides produce the same text; an absent product field
// is the empty string.
func SignaturePayload(key string, amount Money, customerKey, productID, productType string) string {
	amount.Currency = strings.ToUpper(amount.Currency)
	return strings.Join([]string{key, amount.String(), amount.Currency, customerKey, productID, productType}, "|")
}

// PipeInSignedField names the first signed field whose text holds '|', the
// payload's separator ("key", "customer.key", "product_id",
// "product_type"), or returns "" when none does.
func PipeInSignedField(key, customerKey, productID, productType string) string {
	for _, f := range []struct{ name, value string }{
		{"key", key}, {"customer.key", customerKey}, {"product_id", productID}, {"product_type", productType},
	} {
		if strings.Contains(f.value, "|") {
			return f.name
		}
	}
	return ""
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
