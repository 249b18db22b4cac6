package rules

import (
	"errors"
	"math"
	"testing"
)

func TestNormalizeCurrency(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"usd", "USD", true},
		{"USD", "USD", true},
		{"uSd", "USD", true},
		{"jpy", "JPY", true},
		{"KWD", "KWD", true},
		{"XXX", "", false}, // ISO "no currency": not in the currency library, and not money
		{"US", "", false},
		{"USDD", "", false},
		{"ZZZ", "", false},
		{"", "", false},
		{" usd", "", false},
		{"uſd", "", false}, // long s upper-cases to S; must not sneak in as USD
		{"U$D", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeCurrency(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("NormalizeCurrency(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "currency") {
			t.Errorf("NormalizeCurrency(%q) error %#v, want *FieldError on currency", tt.in, err)
		}
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in, cur string
		want    int64
		ok      bool
	}{
		{"25", "USD", 2500, true},
		{"25.5", "USD", 2550, true},
		{"25.50", "USD", 2550, true},
		{"0", "USD", 0, true},
		{"0.00", "USD", 0, true},
		{"0.01", "USD", 1, true},
		{"1.005", "USD", 0, false},
		{"25.500", "USD", 0, false},
		{"1000", "JPY", 1000, true},
		{"0", "JPY", 0, true},
		{"10.5", "JPY", 0, false},
		{"10.0", "JPY", 0, false},
		{"1.234", "KWD", 1234, true},
		{"0.001", "KWD", 1, true},
		{"1.2345", "KWD", 0, false},
		{"1.0005", "KWD", 0, false},
		{"1.2345", "CLF", 12345, true},
		{"10000000000000", "USD", MaxMinor, true},
		{"9999999999999.99", "USD", MaxMinor - 1, true},
		{"10000000000000.01", "USD", 0, false},
		{"1000000000000000", "JPY", MaxMinor, true},
		{"1000000000000001", "JPY", 0, false},
		{"1000000000000.000", "KWD", MaxMinor, true},
		{"1000000000000000000", "USD", 0, false},
		{"99999999999999999999999999999999999999999999", "USD", 0, false},
		{"-1", "USD", 0, false},
		{"-0", "USD", 0, false},
		{"-0.00", "USD", 0, false},
		{"+1", "USD", 0, false},
		{"", "USD", 0, false},
		{" 1", "USD", 0, false},
		{"1 ", "USD", 0, false},
		{"1\n", "USD", 0, false},
		{"1e3", "USD", 0, false},
		{"1E3", "USD", 0, false},
		{"0x10", "USD", 0, false},
		{"NaN", "USD", 0, false},
		{"nan", "USD", 0, false},
		{"Inf", "USD", 0, false},
		{"Infinity", "USD", 0, false},
		{"-Infinity", "USD", 0, false},
		{"1,000", "USD", 0, false},
		{"1_000", "USD", 0, false},
		{"1,5", "USD", 0, false},
		{"١٢", "USD", 0, false},
		{"１２", "USD", 0, false},
		{"012", "USD", 0, false},
		{"00", "USD", 0, false},
		{".5", "USD", 0, false},
		{"5.", "USD", 0, false},
		{".", "USD", 0, false},
		{"1.2.3", "USD", 0, false},
		{"--1", "USD", 0, false},
		{`"1"`, "USD", 0, false},
		{"1", "usd", 0, false}, // callers normalise first
		{"1", "ZZZ", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in, tt.cur)
		if tt.ok != (err == nil) {
			t.Errorf("ParseAmount(%q, %s) = %v, %v; want ok=%v", tt.in, tt.cur, got, err, tt.ok)
			continue
		}
		if !tt.ok {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Message == "" {
				t.Errorf("ParseAmount(%q, %s) error %#v, want *FieldError", tt.in, tt.cur, err)
			}
			continue
		}
		if want := (Money{tt.want, tt.cur}); got != want {
			t.Errorf("ParseAmount(%q, %s) = %+v, want %+v", tt.in, tt.cur, got, want)
		}
	}
}

func TestParseAmountErrors(t *testing.T) {
	tests := []struct{ in, cur, field, msg string }{
		{"", "USD", "amount", "amount is required"},
		{"-5", "USD", "amount", "amount must not be negative"},
		{"-0", "USD", "amount", "amount must not be negative"},
		{"abc", "USD", "amount", "amount must be a decimal number like 25.00"},
		{"-abc", "USD", "amount", "amount must be a decimal number like 25.00"},
		{"1.005", "USD", "amount", "amount has more decimals than USD allows (2)"},
		{"10.5", "JPY", "amount", "amount has more decimals than JPY allows (0)"},
		{"1000000000000000000", "USD", "amount", "amount is too large"},
		{"1", "ZZZ", "currency", `currency "ZZZ" is not a known ISO 4217 code`},
	}
	for _, tt := range tests {
		_, err := ParseAmount(tt.in, tt.cur)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Message != tt.msg {
			t.Errorf("ParseAmount(%q, %s) error = %#v, want %s: %s", tt.in, tt.cur, err, tt.field, tt.msg)
		}
	}
	if got := (&FieldError{"amount", "amount is required"}).Error(); got != "amount: amount is required" {
		t.Errorf("FieldError.Error() = %q", got)
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{Money{2500, "USD"}, "25.00"},
		{Money{2550, "USD"}, "25.50"},
		{Money{1, "USD"}, "0.01"},
		{Money{0, "USD"}, "0.00"},
		{Money{-1, "USD"}, "-0.01"},
		{Money{-2500, "USD"}, "-25.00"},
		{Money{1000, "JPY"}, "1000"},
		{Money{0, "JPY"}, "0"},
		{Money{-7, "JPY"}, "-7"},
		{Money{1, "KWD"}, "0.001"},
		{Money{1234, "KWD"}, "1.234"},
		{Money{1, "CLF"}, "0.0001"},
		{Money{MaxMinor, "USD"}, "10000000000000.00"},
		{Money{math.MaxInt64, "USD"}, "92233720368547758.07"},
		{Money{math.MinInt64, "USD"}, "-92233720368547758.08"},
		{Money{42, ""}, "42"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestDigits(t *testing.T) {
	for cur, want := range map[string]int{"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3, "CLF": 4, "ZZZ": 0} {
		if got := Digits(cur); got != want {
			t.Errorf("Digits(%s) = %d, want %d", cur, got, want)
		}
	}
}

func TestProportion(t *testing.T) {
	tests := []struct {
		reward      Money
		part, whole int64
		want        int64
	}{
		{Money{1000, "USD"}, 5000, 10000, 500},
		{Money{1000, "USD"}, 10000, 10000, 1000},
		{Money{1000, "USD"}, 0, 10000, 0},
		{Money{1000, "USD"}, 1, 0, 1000},         // whole 0: full reward
		{Money{1000, "USD"}, 20000, 10000, 1000}, // more than the whole: full reward
		{Money{1000, "USD"}, -5, 10000, 0},
		{Money{100, "USD"}, 1, 3, 33},
		{Money{100, "USD"}, 2, 3, 67},
		{Money{1, "USD"}, 1, 2, 0},   // 0.5 -> 0
		{Money{3, "USD"}, 1, 2, 2},   // 1.5 -> 2
		{Money{5, "USD"}, 1, 2, 2},   // 2.5 -> 2
		{Money{7, "USD"}, 1, 2, 4},   // 3.5 -> 4
		{Money{-3, "USD"}, 1, 2, -2}, // -1.5 -> -2
		{Money{-5, "USD"}, 1, 2, -2}, // -2.5 -> -2
		{Money{-7, "USD"}, 1, 4, -2}, // -1.75 -> -2
		{Money{10, "JPY"}, 1, 4, 2},  // 2.5 -> 2
		{Money{MaxMinor, "USD"}, MaxMinor - 1, MaxMinor, MaxMinor - 1},
		{Money{MaxMinor, "USD"}, MaxMinor / 2, MaxMinor, MaxMinor / 2},
		{Money{MaxMinor - 1, "USD"}, 1, 2, MaxMinor / 2},   // 499..99.5 -> 500..00 (even)
		{Money{MaxMinor - 3, "USD"}, 1, 2, MaxMinor/2 - 2}, // 499..98.5 -> 499..98
		{Money{math.MaxInt64, "USD"}, math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64 - 1},
		{Money{3, "USD"}, math.MaxInt64 / 2, math.MaxInt64, 1}, // just under half of 3 -> 1
	}
	for _, tt := range tests {
		got := Proportion(tt.reward, tt.part, tt.whole)
		if want := (Money{tt.want, tt.reward.Currency}); got != want {
			t.Errorf("Proportion(%+v, %d, %d) = %+v, want %+v", tt.reward, tt.part, tt.whole, got, want)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"25", "25.5", "0.00", "1.005", "1e3", "-0", "١٢", "10000000000000.00", "0.001"} {
		for _, cur := range []string{"USD", "JPY", "KWD"} {
			f.Add(s, cur)
		}
	}
	f.Fuzz(func(t *testing.T, s, cur string) {
		m, err := ParseAmount(s, cur)
		if err != nil {
			return
		}
		if m.Minor < 0 || m.Minor > MaxMinor || m.Currency != cur {
			t.Fatalf("ParseAmount(%q, %q) = %+v out of range", s, cur, m)
		}
		back, err := ParseAmount(m.String(), cur)
		if err != nil || back != m {
			t.Fatalf("ParseAmount(%q) = %+v; String %q parses to %+v, %v", s, m, m.String(), back, err)
		}
	})
}
