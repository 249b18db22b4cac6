// Package rules holds potrack's money and commission logic: parsing amounts, computing
// rewards, signing JS transactions and deciding attribution. It does no I/O, so every
// decision the server makes about money can be tested here on its own.
package rules

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/bojanz/currency"
)

// FieldError is a validation failure on one input field; Field is the JSON field name
// (e.g. "amount", "commission.rules[1].product_id").
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// NormalizeCurrency upper-cases and validates an ISO 4217 code ("usd" -> "USD").
func NormalizeCurrency(code string) (string, error) {
	if code == "" {
		return "", &FieldError{"currency", "currency is required"}
	}
	// ASCII only: strings.ToUpper would turn "uſd" (long s) into "USD".
	if len(code) != 3 || !isASCIILetters(code) {
		return "", &FieldError{"currency", "currency must be a 3-letter ISO 4217 code like USD"}
	}
	code = strings.ToUpper(code)
	if !currency.IsValid(code) {
		return "", &FieldError{"currency", fmt.Sprintf("currency %q is not a known ISO 4217 code", code)}
	}
	return code, nil
}

func isASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// Money is an amount in a currency's minor units (USD cents, JPY yen, KWD fils).
type Money struct {
	Minor    int64
	Currency string
}

// MaxMinor bounds amounts so they stay exact in JSON numbers (2^53) and SQLite
// integers, and so sums of many of them cannot overflow int64.
const MaxMinor int64 = 1_000_000_000_000_000

// Digits returns the number of minor digits of an (already valid) currency; 0 when unknown.
func Digits(code string) int {
	d, _ := currency.GetDigits(code)
	return int(d)
}

// ParseAmount parses a plain decimal ("25", "25.50") in an already normalised currency.
// The grammar is JSON's number grammar without sign and exponent, so the same text is
// accepted whether it arrived as a JSON number or a JSON string. More fraction digits
// than the currency has are rejected, even trailing zeros: the spec says such amounts
// are rejected, not rounded, and "25.500" USD is most likely a unit mistake.
func ParseAmount(s, code string) (Money, error) {
	digits, ok := currency.GetDigits(code)
	if !ok {
		return Money{}, &FieldError{"currency", fmt.Sprintf("currency %q is not a known ISO 4217 code", code)}
	}
	if s == "" {
		return Money{}, &FieldError{"amount", "amount is required"}
	}
	if s[0] == '-' && isPlainDecimal(s[1:]) {
		return Money{}, &FieldError{"amount", "amount must not be negative"}
	}
	if !isPlainDecimal(s) {
		return Money{}, &FieldError{"amount", "amount must be a decimal number like 25.00"}
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if len(frac) > int(digits) {
		return Money{}, &FieldError{"amount", fmt.Sprintf("amount has more decimals than %s allows (%d)", code, digits)}
	}
	// The length check keeps absurdly long input away from the decimal library.
	tooLarge := &FieldError{"amount", "amount is too large"}
	if len(intPart) > 19 {
		return Money{}, tooLarge
	}
	a, err := currency.NewAmount(s, code)
	if err != nil {
		return Money{}, &FieldError{"amount", "amount must be a decimal number like 25.00"}
	}
	minor, err := a.Int64()
	if err != nil || minor > MaxMinor {
		return Money{}, tooLarge
	}
	return Money{minor, code}, nil
}

// isPlainDecimal reports whether s is "0" or digits without a leading zero, optionally
// followed by '.' and at least one digit.
func isPlainDecimal(s string) bool {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if !allDigits(intPart) || (len(intPart) > 1 && intPart[0] == '0') {
		return false
	}
	return !hasDot || allDigits(frac)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// String formats with exactly the currency's minor digits: "25.00" USD, "1000" JPY,
// "0.001" KWD; reversed rewards get a leading '-'.
func (m Money) String() string {
	a, err := currency.NewAmountFromInt64(m.Minor, m.Currency)
	if err != nil {
		return strconv.FormatInt(m.Minor, 10)
	}
	return a.Number()
}

// Proportion returns reward * part / whole, rounded half-to-even to the minor unit: the
// share of a reward that a refund of part out of whole transaction minor units reverses.
// whole <= 0 or part >= whole returns the full reward, part <= 0 returns zero, so the
// result never exceeds the reward. big.Int keeps reward*part exact beyond int64.
func Proportion(reward Money, part, whole int64) Money {
	if whole <= 0 || part >= whole {
		return reward
	}
	if part <= 0 {
		return Money{0, reward.Currency}
	}
	n := new(big.Int).Mul(big.NewInt(reward.Minor), big.NewInt(part))
	w := big.NewInt(whole)
	q, r := new(big.Int).QuoRem(n, w, new(big.Int))
	// Half-to-even on |r|/w: QuoRem truncates toward zero, so step away from zero.
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	if c := twice.Cmp(w); c > 0 || (c == 0 && q.Bit(0) == 1) {
		q.Add(q, big.NewInt(int64(n.Sign())))
	}
	return Money{q.Int64(), reward.Currency}
}
