package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestSignaturePayload(t *testing.T) {
	tests := []struct {
		key                   string
		amount                Money
		customer              string
		productID, productTyp string
		want                  string
	}{
		// SPEC.md's own examples.
		{"order_9", Money{2500, "USD"}, "cust_7", "pro", "monthly", "order_9|25.00|USD|cust_7|pro|monthly"},
		{"order_9", Money{2500, "USD"}, "cust_7", "", "", "order_9|25.00|USD|cust_7||"},
		{"order_9", Money{2550, "USD"}, "cust_7", "", "", "order_9|25.50|USD|cust_7||"},
		{"o1", Money{0, "USD"}, "c1", "", "", "o1|0.00|USD|c1||"},
		{"o2", Money{1000, "JPY"}, "c2", "", "", "o2|1000|JPY|c2||"},
		{"o3", Money{1, "KWD"}, "c3", "", "", "o3|0.001|KWD|c3||"},
		{"o4", Money{100, "EUR"}, "", "", "", "o4|1.00|EUR|||"},
		// Each product field keeps its place when the other is absent.
		{"o5", Money{2500, "USD"}, "c5", "vip", "", "o5|25.00|USD|c5|vip|"},
		{"o6", Money{2500, "USD"}, "c6", "", "annual", "o6|25.00|USD|c6||annual"},
		// The code is written upper-case whatever the caller holds.
		{"o7", Money{2500, "usd"}, "c7", "", "", "o7|25.00|USD|c7||"},
	}
	for _, tt := range tests {
		if got := SignaturePayload(tt.key, tt.amount, tt.customer, tt.productID, tt.productTyp); got != tt.want {
			t.Errorf("SignaturePayload(%q, %+v, %q, %q, %q) = %q, want %q", tt.key, tt.amount, tt.customer, tt.productID, tt.productTyp, got, tt.want)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	// RFC 4231 test case 2 pins the algorithm independently of our own HMAC code.
	const rfcKey, rfcData = "Jefe", "what do ya want for nothing?"
	const rfcSig = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

	secret, payload := "s3cret", "order_9|25.00|USD|cust_7|pro|monthly"
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(payload))
	good := hex.EncodeToString(mac.Sum(nil))
	flipped := []byte(good)
	flipped[10] ^= 1

	tests := []struct {
		name, secret, payload, sig string
		want                       bool
	}{
		{"rfc 4231", rfcKey, rfcData, rfcSig, true},
		{"rfc 4231 upper case", rfcKey, rfcData, strings.ToUpper(rfcSig), true},
		{"good", secret, payload, good, true},
		{"upper case hex", secret, payload, strings.ToUpper(good), true},
		{"mixed case hex", secret, payload, strings.ToUpper(good[:32]) + good[32:], true},
		{"wrong secret", "other", payload, good, false},
		{"wrong payload", secret, "order_9|25.01|USD|cust_7|pro|monthly", good, false},
		{"other product", secret, "order_9|25.00|USD|cust_7|vip|monthly", good, false},
		{"without the product fields", secret, "order_9|25.00|USD|cust_7", good, false},
		{"one bit off", secret, payload, string(flipped), false},
		{"odd length", secret, payload, good[:63], false},
		{"too short", secret, payload, good[:62], false},
		{"too long", secret, payload, good + "00", false},
		{"not hex", secret, payload, "zz" + good[2:], false},
		{"empty", secret, payload, "", false},
		{"spaces", secret, payload, " " + good[1:], false},
		{"empty secret", "", payload, hex.EncodeToString(hmac.New(sha256.New, nil).Sum(nil)), false},
	}
	for _, tt := range tests {
		if got := VerifySignature(tt.secret, tt.payload, tt.sig); got != tt.want {
			t.Errorf("%s: VerifySignature = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPipeInSignedField(t *testing.T) {
	for _, c := range []struct {
		key, customer, productID, productType, want string
	}{
		{"o1", "c1", "pro", "monthly", ""},
		{"o|1", "c1", "", "", "key"},
		{"o1", "c|1", "", "", "customer.key"},
		{"o1", "c1", "a|b", "x", "product_id"},
		{"o1", "c1", "", "|", "product_type"},
	} {
		if got := PipeInSignedField(c.key, c.customer, c.productID, c.productType); got != c.want {
			t.Errorf("PipeInSignedField(%q, %q, %q, %q) = %q, want %q", c.key, c.customer, c.productID, c.productType, got, c.want)
		}
	}
}
