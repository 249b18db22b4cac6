package rules

import (
	"testing"
	"time"
)

func TestReversal(t *testing.T) {
	for _, tt := range []struct {
		state               string
		full                bool
		kind, bucket, after string
	}{
		{StatePending, false, EntryReversed, BucketPending, StatePending},
		{StatePending, true, EntryReversed, BucketPending, StateReversed},
		{StateApproved, false, EntryReversed, BucketApproved, StateApproved},
		{StateApproved, true, EntryReversed, BucketApproved, StateReversed},
		{StateInPayout, false, EntryClawback, BucketClawback, StateInPayout},
		{StateInPayout, true, EntryClawback, BucketClawback, StateInPayout},
		{StatePaid, true, EntryClawback, BucketClawback, StatePaid},
	} {
		kind, bucket, after := Reversal(tt.state, tt.full)
		if kind != tt.kind || bucket != tt.bucket || after != tt.after {
			t.Errorf("Reversal(%s, %v) = %s %s %s, want %s %s %s", tt.state, tt.full, kind, bucket, after, tt.kind, tt.bucket, tt.after)
		}
	}
}

func TestDueAndEffective(t *testing.T) {
	sale := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if Due(sale, 30, sale.Add(30*24*time.Hour-time.Second)) || !Due(sale, 30, sale.Add(30*24*time.Hour)) || !Due(sale, 0, sale) {
		t.Error("Due is wrong at the edges of the hold")
	}
	for _, tt := range []struct {
		state     string
		due, held bool
		want      string
	}{
		{StatePending, false, false, StatePending},
		{StatePending, true, false, StateApproved},
		{StatePending, true, true, StatePending},
		{StatePaid, true, false, StatePaid},
		{StateReversed, true, false, StateReversed},
	} {
		if got := Effective(tt.state, tt.due, tt.held); got != tt.want {
			t.Errorf("Effective(%s, %v, %v) = %s, want %s", tt.state, tt.due, tt.held, got, tt.want)
		}
	}
}

func TestPayable(t *testing.T) {
	for _, tt := range []struct {
		rewards, claw, min, amount int64
		ok                         bool
	}{
		{5000, 0, 0, 5000, true},
		{5000, 1000, 0, 4000, true},
		{5000, 1000, 4000, 4000, true},
		{5000, 1000, 4001, 4000, false},
		{1000, 1000, 0, 0, false},
		{1000, 3000, 0, -2000, false},
	} {
		amount, ok := Payable(PayoutLine{tt.rewards, tt.claw}, tt.min)
		if amount != tt.amount || ok != tt.ok {
			t.Errorf("Payable(%d, %d, min %d) = %d %v, want %d %v", tt.rewards, tt.claw, tt.min, amount, ok, tt.amount, tt.ok)
		}
	}
}

func TestCheckMinPayoutAndHold(t *testing.T) {
	if m, err := CheckMinPayout(map[string]int64{"usd": 5000, "EUR": 0}); err != nil || m["USD"] != 5000 || len(m) != 2 {
		t.Errorf("CheckMinPayout: %v %v", m, err)
	}
	for _, bad := range []map[string]int64{{"XX": 1}, {"USD": -1}, {"USD": MaxMinor + 1}} {
		if _, err := CheckMinPayout(bad); err == nil {
			t.Errorf("CheckMinPayout(%v) accepted", bad)
		}
	}
	for n, ok := range map[int]bool{-1: false, 0: true, 30: true, 365: true, 366: false} {
		if err := CheckHoldDays(n); (err == nil) != ok {
			t.Errorf("CheckHoldDays(%d): %v", n, err)
		}
	}
}

func TestClickFlags(t *testing.T) {
	for url, want := range map[string]string{
		"https://shop.example/?aff=alice":                    "",
		"https://shop.example/?aff=alice&gclid=abc":          "gclid",
		"https://shop.example/?aff=alice&FBCLID=x&msclkid=y": "fbclid,msclkid",
		"https://shop.example/?gclid=&fbclid=1&msclkid=2":    "gclid,fbclid,msclkid",
		"https://shop.example/gclid/?aff=a":                  "",
		"https://shop.example/?aff=a#gclid=1":                "",
		"https://shop.example/?xgclid=1":                     "",
		"not a url %%% gclid":                                "",
	} {
		if got := ClickFlags(url); got != want {
			t.Errorf("ClickFlags(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestSelfReferralAndMask(t *testing.T) {
	if !SelfReferral(" Jane@Example.com", "jane@example.COM ") || SelfReferral("", "") || SelfReferral("a@x.com", "b@x.com") {
		t.Error("SelfReferral")
	}
	for in, want := range map[string]string{"jane@example.com": "j***@example.com", "Ümit@ex.de": "Ü***@ex.de", "": "", "nobody": "***", "@x.com": "***"} {
		if got := MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}
