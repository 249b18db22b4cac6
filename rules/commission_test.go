package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func pct(v Decimal) Commission { return Commission{Type: TypePercent, Value: v} }

func TestRewardPercentRounding(t *testing.T) {
	tests := []struct {
		value Decimal
		minor int64
		cur   string
		want  int64
	}{
		{"20", 2500, "USD", 500},
		{"12.5", 20, "USD", 2}, // 0.025 -> 0.02
		{"12.5", 36, "USD", 4}, // 0.045 -> 0.04
		{"12.5", 50, "USD", 6}, // 0.0625 -> 0.06
		{"12.5", 52, "USD", 6}, // 0.065 -> 0.06
		{"12.5", 60, "USD", 8}, // 0.075 -> 0.08
		{"10", 5, "USD", 0},    // 0.005 -> 0.00
		{"10", 15, "USD", 2},   // 0.015 -> 0.02
		{"10", 25, "USD", 2},   // 0.025 -> 0.02
		{"10", 26, "USD", 3},   // 0.026 -> 0.03
		{"50", 1, "JPY", 0},    // 0.5 -> 0
		{"50", 3, "JPY", 2},    // 1.5 -> 2
		{"50", 5, "JPY", 2},    // 2.5 -> 2
		{"33.3333", 100, "JPY", 33},
		{"0.0001", 10000, "USD", 0}, // 0.0001% of 100.00 = 0.0001 -> 0
		{"0.0001", 5000000, "USD", 5},
		{"12.5", 1, "KWD", 0},
		{"12.5", 4, "KWD", 0},  // 0.0005 -> 0.000
		{"12.5", 12, "KWD", 2}, // 0.0015 -> 0.002
		{"0", 2500, "USD", 0},
		{"20", 0, "USD", 0},
		{"100", MaxMinor, "USD", MaxMinor},
		{"100.0000", MaxMinor, "JPY", MaxMinor},
		{"99.9999", MaxMinor, "USD", 999_999_000_000_000},
		{"33.3333", MaxMinor, "USD", 333_333_000_000_000},
		{"12.5", MaxMinor - 1, "USD", 125_000_000_000_000}, // 124_999_999_999_999.875 -> up
		{"0.0001", MaxMinor - 1, "USD", 1_000_000_000},     // 999_999_999.999999 -> up
	}
	for _, tt := range tests {
		got, ok, err := pct(tt.value).Reward(Sale{Amount: Money{tt.minor, tt.cur}}, "EUR")
		want := Money{tt.want, tt.cur}
		if err != nil || !ok || got != want {
			t.Errorf("%s%% of %d %s = %+v, %v, %v; want %+v", tt.value, tt.minor, tt.cur, got, ok, err, want)
		}
	}
}

func TestRewardMatching(t *testing.T) {
	c := Commission{
		Type: TypePercent, Value: "20",
		Rules: []Rule{
			{ProductType: "monthly", Type: TypePercent, Value: "10"},
			{ProductID: "pro", Type: TypeFixed, Value: "5.00"},
			{ProductID: "basic", Type: TypePercent, Value: "50"},
			{ProductType: "yearly", Type: TypeFixed, Value: "7"},
		},
	}
	tests := []struct {
		name    string
		id, typ string
		want    Money
	}{
		{"default", "", "", Money{200, "USD"}},
		{"unknown product", "other", "other", Money{200, "USD"}},
		{"product_type", "", "monthly", Money{100, "USD"}},
		{"product_type with unmatched id", "other", "monthly", Money{100, "USD"}},
		{"product_id fixed in program currency", "pro", "", Money{500, "EUR"}},
		{"product_id beats product_type", "pro", "monthly", Money{500, "EUR"}},
		{"product_id beats earlier product_type", "basic", "monthly", Money{500, "USD"}},
		{"fixed product_type", "", "yearly", Money{700, "EUR"}},
		{"case sensitive", "PRO", "Monthly", Money{200, "USD"}},
		{"id does not match type", "monthly", "", Money{200, "USD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Sale{Amount: Money{1000, "USD"}, ProductID: tt.id, ProductType: tt.typ}
			got, ok, err := c.Reward(s, "EUR")
			if err != nil || !ok || got != tt.want {
				t.Errorf("Reward = %+v, %v, %v; want %+v", got, ok, err, tt.want)
			}
		})
	}
}

func TestRewardLimits(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name  string
		limit *Limit
		prior int
		at    time.Time
		ok    bool
	}{
		{"nil is lifetime", nil, 1000, created.Add(10000 * day), true},
		{"lifetime", &Limit{Type: LimitLifetime}, 1000, created.Add(10000 * day), true},
		{"first transaction of 3", &Limit{LimitTransactions, 3}, 0, created, true},
		{"third transaction of 3", &Limit{LimitTransactions, 3}, 2, created, true},
		{"fourth transaction of 3", &Limit{LimitTransactions, 3}, 3, created, false},
		{"second transaction of 1", &Limit{LimitTransactions, 1}, 1, created, false},
		{"days: at creation", &Limit{LimitDays, 30}, 0, created, true},
		{"days: last nanosecond", &Limit{LimitDays, 30}, 0, created.Add(30*day - 1), true},
		{"days: exactly at boundary", &Limit{LimitDays, 30}, 0, created.Add(30 * day), false},
		{"days: after", &Limit{LimitDays, 30}, 0, created.Add(31 * day), false},
		{"days: other zone, same instant", &Limit{LimitDays, 1}, 0, created.Add(day - time.Second).In(time.FixedZone("X", 5*3600)), true},
		{"days ignore transaction count", &Limit{LimitDays, 1}, 99, created, true},
		{"transactions ignore time", &Limit{LimitTransactions, 1}, 0, created.Add(1000 * day), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Sale{Amount: Money{1000, "USD"}, At: tt.at, CustomerCreatedAt: created, PriorTransactions: tt.prior}
			for _, c := range []Commission{
				{Type: TypePercent, Value: "20", Limit: tt.limit},
				{Type: TypePercent, Value: "0", Rules: []Rule{{ProductID: "x", Type: TypePercent, Value: "20", Limit: tt.limit}}},
			} {
				if c.Rules != nil {
					s.ProductID = "x"
				}
				got, ok, err := c.Reward(s, "USD")
				if err != nil || ok != tt.ok {
					t.Fatalf("Reward = %+v, %v, %v; want ok=%v", got, ok, err, tt.ok)
				}
				if ok && got != (Money{200, "USD"}) {
					t.Errorf("Reward = %+v, want 2.00 USD", got)
				}
				if !ok && got != (Money{}) {
					t.Errorf("no reward but Money %+v", got)
				}
			}
		})
	}
}

func TestRewardLimitPerRule(t *testing.T) {
	c := Commission{
		Type: TypePercent, Value: "20",
		Rules: []Rule{{ProductID: "trial", Type: TypeFixed, Value: "1", Limit: &Limit{LimitTransactions, 1}}},
	}
	s := Sale{Amount: Money{1000, "USD"}, ProductID: "trial", PriorTransactions: 1}
	if _, ok, err := c.Reward(s, "USD"); ok || err != nil {
		t.Errorf("rule limit exhausted: ok=%v err=%v", ok, err)
	}
	s.ProductID = ""
	if got, ok, err := c.Reward(s, "USD"); !ok || err != nil || got != (Money{200, "USD"}) {
		t.Errorf("default (lifetime) = %+v, %v, %v", got, ok, err)
	}
}

func TestRewardInvalidConfig(t *testing.T) {
	s := Sale{Amount: Money{1000, "USD"}}
	for _, c := range []Commission{
		{Type: "bogus", Value: "20"},
		{Type: TypePercent, Value: "abc"},
		{Type: TypePercent, Value: "1e2"},
		{Type: TypeFixed, Value: "1.001"},
	} {
		if got, ok, err := c.Reward(s, "USD"); err == nil || ok {
			t.Errorf("%+v.Reward = %+v, %v, nil; want error", c, got, ok)
		}
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("p", 129)
	tooMany := make([]Rule, 101)
	for i := range tooMany {
		tooMany[i] = Rule{ProductID: fmt.Sprint(i), Type: TypePercent, Value: "1"}
	}
	tests := []struct {
		name  string
		c     Commission
		cur   string
		field string // "" means valid
	}{
		{"default", DefaultCommission(), "USD", ""},
		{"percent 0", pct("0"), "USD", ""},
		{"percent 100", pct("100"), "USD", ""},
		{"percent 100.0000", pct("100.0000"), "USD", ""},
		{"percent 4 decimals", pct("12.3456"), "USD", ""},
		{"percent 5 decimals", pct("12.34567"), "USD", "commission.value"},
		{"percent over 100", pct("100.0001"), "USD", "commission.value"},
		{"percent 101", pct("101"), "USD", "commission.value"},
		{"percent 1000", pct("1000"), "USD", "commission.value"},
		{"percent negative", pct("-1"), "USD", "commission.value"},
		{"percent empty", pct(""), "USD", "commission.value"},
		{"percent exponent", pct("1e1"), "USD", "commission.value"},
		{"percent leading zero", pct("020"), "USD", "commission.value"},
		{"percent text", pct("twenty"), "USD", "commission.value"},
		{"fixed", Commission{Type: TypeFixed, Value: "5.00"}, "USD", ""},
		{"fixed JPY", Commission{Type: TypeFixed, Value: "500"}, "JPY", ""},
		{"fixed JPY decimals", Commission{Type: TypeFixed, Value: "5.5"}, "JPY", "commission.value"},
		{"fixed too many decimals", Commission{Type: TypeFixed, Value: "5.001"}, "USD", "commission.value"},
		{"fixed negative", Commission{Type: TypeFixed, Value: "-5"}, "USD", "commission.value"},
		{"fixed huge", Commission{Type: TypeFixed, Value: "1000000000000000000"}, "USD", "commission.value"},
		{"type empty", Commission{Value: "20"}, "USD", "commission.type"},
		{"type unknown", Commission{Type: "flat", Value: "20"}, "USD", "commission.type"},
		{"type upper case", Commission{Type: "PERCENT", Value: "20"}, "USD", "commission.type"},
		{"limit lifetime", Commission{Type: TypePercent, Value: "20", Limit: &Limit{Type: LimitLifetime}}, "USD", ""},
		{"limit lifetime with value", Commission{Type: TypePercent, Value: "20", Limit: &Limit{LimitLifetime, 3}}, "USD", "commission.limit.value"},
		{"limit transactions", Commission{Type: TypePercent, Value: "20", Limit: &Limit{LimitTransactions, 3}}, "USD", ""},
		{"limit transactions 0", Commission{Type: TypePercent, Value: "20", Limit: &Limit{Type: LimitTransactions}}, "USD", "commission.limit.value"},
		{"limit days max", Commission{Type: TypePercent, Value: "20", Limit: &Limit{LimitDays, 100000}}, "USD", ""},
		{"limit days over max", Commission{Type: TypePercent, Value: "20", Limit: &Limit{LimitDays, 100001}}, "USD", "commission.limit.value"},
		{"limit days negative", Commission{Type: TypePercent, Value: "20", Limit: &Limit{LimitDays, -1}}, "USD", "commission.limit.value"},
		{"limit type unknown", Commission{Type: TypePercent, Value: "20", Limit: &Limit{"weeks", 2}}, "USD", "commission.limit.type"},
		{"limit type empty", Commission{Type: TypePercent, Value: "20", Limit: &Limit{}}, "USD", "commission.limit.type"},
		{"rules ok", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: "pro", Type: TypeFixed, Value: "5.00"},
			{ProductType: "monthly", Type: TypePercent, Value: "12.5", Limit: &Limit{LimitDays, 30}},
			{ProductType: "pro", Type: TypePercent, Value: "1"}, // same text, different kind: fine
		}}, "USD", ""},
		{"rule both keys", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: "pro", Type: TypeFixed, Value: "5"},
			{ProductID: "a", ProductType: "b", Type: TypeFixed, Value: "5"},
		}}, "USD", "commission.rules[1]"},
		{"rule no key", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{Type: TypeFixed, Value: "5"},
		}}, "USD", "commission.rules[0]"},
		{"rule product_id too long", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: long, Type: TypeFixed, Value: "5"},
		}}, "USD", "commission.rules[0].product_id"},
		{"rule product_id 128", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: long[1:], Type: TypeFixed, Value: "5"},
		}}, "USD", ""},
		{"rule product_type too long", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductType: long, Type: TypeFixed, Value: "5"},
		}}, "USD", "commission.rules[0].product_type"},
		{"duplicate product_id", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: "pro", Type: TypeFixed, Value: "5"},
			{ProductType: "pro", Type: TypeFixed, Value: "5"},
			{ProductID: "pro", Type: TypePercent, Value: "5"},
		}}, "USD", "commission.rules[2].product_id"},
		{"duplicate product_type", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductType: "m", Type: TypeFixed, Value: "5"},
			{ProductType: "m", Type: TypeFixed, Value: "5"},
		}}, "USD", "commission.rules[1].product_type"},
		{"rule bad type", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: "a", Type: TypeFixed, Value: "5"},
			{ProductID: "b", Type: "x", Value: "5"},
		}}, "USD", "commission.rules[1].type"},
		{"rule bad value", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: "a", Type: TypeFixed, Value: "5"},
			{ProductID: "b", Type: TypeFixed, Value: "5"},
			{ProductID: "c", Type: TypeFixed, Value: "5.123"},
		}}, "USD", "commission.rules[2].value"},
		{"rule bad limit", Commission{Type: TypePercent, Value: "20", Rules: []Rule{
			{ProductID: "a", Type: TypeFixed, Value: "5", Limit: &Limit{LimitTransactions, 0}},
		}}, "USD", "commission.rules[0].limit.value"},
		{"100 rules", Commission{Type: TypePercent, Value: "20", Rules: tooMany[:100]}, "USD", ""},
		{"101 rules", Commission{Type: TypePercent, Value: "20", Rules: tooMany}, "USD", "commission.rules"},
		{"default checked before rules", Commission{Type: "x", Rules: tooMany}, "USD", "commission.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			err := c.Validate(tt.cur)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if c.Rules == nil {
					t.Errorf("Validate left Rules nil")
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || fe.Message == "" {
				t.Fatalf("Validate = %#v, want *FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestValidatedCommissionAlwaysRewards(t *testing.T) {
	c := Commission{Type: TypeFixed, Value: "1.5"}
	if err := c.Validate("USD"); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Reward(Sale{Amount: Money{0, "JPY"}}, "USD"); !ok || err != nil || got != (Money{150, "USD"}) {
		t.Errorf("fixed reward on a zero sale = %+v, %v, %v", got, ok, err)
	}
}

func TestCommissionJSON(t *testing.T) {
	tests := []struct {
		in, out string
	}{
		{`{"type":"percent","value":20}`, `{"type":"percent","value":"20","rules":[]}`},
		{`{"type":"percent","value":"20"}`, `{"type":"percent","value":"20","rules":[]}`},
		{`{"type":"percent","value":12.50,"rules":null}`, `{"type":"percent","value":"12.50","rules":[]}`},
		{`{"type":"percent","value":0.1,"limit":{"type":"lifetime"}}`, `{"type":"percent","value":"0.1","limit":{"type":"lifetime"},"rules":[]}`},
		{
			`{"type":"percent","value":20,"limit":{"type":"transactions","value":3},
			  "rules":[{"product_id":"pro","type":"fixed","value":"5.00"},
			           {"product_type":"monthly","type":"percent","value":"12.5","limit":{"type":"days","value":30}}]}`,
			`{"type":"percent","value":"20","limit":{"type":"transactions","value":3},` +
				`"rules":[{"product_id":"pro","type":"fixed","value":"5.00"},` +
				`{"product_type":"monthly","type":"percent","value":"12.5","limit":{"type":"days","value":30}}]}`,
		},
		// Digits a float64 would lose survive as text.
		{`{"type":"fixed","value":12345678901234567.89}`, `{"type":"fixed","value":"12345678901234567.89","rules":[]}`},
	}
	for _, tt := range tests {
		var c Commission
		if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		b, err := json.Marshal(c)
		if err != nil || string(b) != tt.out {
			t.Errorf("round trip of %s = %s, %v; want %s", tt.in, b, err, tt.out)
			continue
		}
		var again Commission
		if err := json.Unmarshal(b, &again); err != nil {
			t.Errorf("Unmarshal(%s): %v", b, err)
		}
		if b2, _ := json.Marshal(again); string(b2) != tt.out {
			t.Errorf("second round trip = %s, want %s", b2, tt.out)
		}
	}
}

func TestCommissionJSONRejects(t *testing.T) {
	for _, in := range []string{
		`{"type":"percent","value":"abc"}`,
		`{"type":"percent","value":"NaN"}`,
		`{"type":"percent","value":true}`,
		`{"type":"percent","value":[20]}`,
		`{"type":"percent","value":{"n":20}}`,
		`{"type":"percent","value":""}`,
	} {
		var c Commission
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want error", in, c)
		}
	}
	// Number texts JSON allows but Validate does not are rejected there, with a path.
	for _, in := range []string{`{"type":"percent","value":2e1}`, `{"type":"percent","value":-5}`, `{"type":"percent","value":null}`} {
		var c Commission
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Fatalf("Unmarshal(%s): %v", in, err)
		}
		var fe *FieldError
		if err := c.Validate("USD"); !errors.As(err, &fe) || fe.Field != "commission.value" {
			t.Errorf("Validate(%s) = %v, want commission.value error", in, err)
		}
	}
}

func TestDefaultCommission(t *testing.T) {
	c := DefaultCommission()
	b, _ := json.Marshal(c)
	if string(b) != `{"type":"percent","value":"20","rules":[]}` {
		t.Errorf("DefaultCommission JSON = %s", b)
	}
	got, ok, err := c.Reward(Sale{Amount: Money{2500, "USD"}, PriorTransactions: 500}, "USD")
	if !ok || err != nil || got != (Money{500, "USD"}) {
		t.Errorf("DefaultCommission reward = %+v, %v, %v", got, ok, err)
	}
}

func TestValidateMessages(t *testing.T) {
	tests := []struct {
		c   Commission
		cur string
		msg string
	}{
		{Commission{Type: TypeFixed, Value: "5.001"}, "USD", "value has more decimals than USD allows (2)"},
		{Commission{Type: TypeFixed, Value: "-5"}, "USD", "value must not be negative"},
		{pct("101"), "USD", "value must be a percentage between 0 and 100 with at most 4 decimals"},
		{Commission{Type: "x"}, "USD", `type must be "percent" or "fixed"`},
		{Commission{Type: TypePercent, Value: "1", Rules: []Rule{
			{ProductType: "m", Type: TypeFixed, Value: "5"}, {ProductType: "m", Type: TypeFixed, Value: "5"},
		}}, "USD", `another rule already has product_type "m"`},
	}
	for _, tt := range tests {
		var fe *FieldError
		if err := tt.c.Validate(tt.cur); !errors.As(err, &fe) || fe.Message != tt.msg {
			t.Errorf("Validate(%+v) = %v, want message %q", tt.c, err, tt.msg)
		}
	}
}
