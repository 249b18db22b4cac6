package rules

import "testing"

func TestAttributeTransaction(t *testing.T) {
	tests := []struct {
		exists, create, partner bool
		want                    Outcome
	}{
		{true, true, true, UseExisting},
		{true, true, false, UseExisting},
		{true, false, true, UseExisting},
		{true, false, false, UseExisting},
		{false, true, true, CreateWithPartner},
		{false, true, false, CreateUnattributed},
		{false, false, true, CustomerNotFound},
		{false, false, false, Ignore},
	}
	for _, tt := range tests {
		if got := AttributeTransaction(tt.exists, tt.create, tt.partner); got != tt.want {
			t.Errorf("AttributeTransaction(exists=%v, create=%v, partner=%v) = %v, want %v",
				tt.exists, tt.create, tt.partner, got, tt.want)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{
		UseExisting: "UseExisting", CreateWithPartner: "CreateWithPartner",
		CreateUnattributed: "CreateUnattributed", Ignore: "Ignore",
		CustomerNotFound: "CustomerNotFound", Outcome(99): "Outcome(?)",
	} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

// TestChooseAttribution: a new customer's partner, for every mix of what a
// sale names and what the program knows.
func TestChooseAttribution(t *testing.T) {
	type c struct{ named, known bool }
	tests := []struct {
		name  string
		cands map[string]c
		want  string
	}{
		{"nothing named", nil, ""},
		{"explicit partner", map[string]c{ByPartner: {true, true}}, ByPartner},
		{"explicit partner beats a code", map[string]c{ByPartner: {true, true}, ByCode: {true, true}}, ByPartner},
		{"unknown explicit partner: none, the code is not used", map[string]c{ByPartner: {true, false}, ByCode: {true, true}}, ""},
		{"code", map[string]c{ByCode: {true, true}}, ByCode},
		{"code beats the cookie", map[string]c{ByCode: {true, true}, ByCookie: {true, true}}, ByCode},
		{"unknown code: the cookie", map[string]c{ByCode: {true, false}, ByCookie: {true, true}}, ByCookie},
		{"unknown code, no cookie", map[string]c{ByCode: {true, false}}, ""},
		{"cookie", map[string]c{ByCookie: {true, true}}, ByCookie},
		{"unknown cookie partner", map[string]c{ByCookie: {true, false}}, ""},
		{"unknown cookie, known code", map[string]c{ByCode: {true, true}, ByCookie: {true, false}}, ByCode},
		{"metadata", map[string]c{ByMetadata: {true, true}}, ByMetadata},
		{"code beats metadata", map[string]c{ByCode: {true, true}, ByMetadata: {true, true}}, ByCode},
		{"unknown code: metadata", map[string]c{ByCode: {true, false}, ByMetadata: {true, true}}, ByMetadata},
		{"known but not named counts for nothing", map[string]c{ByCode: {false, true}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			got := ChooseAttribution(func(by string) (bool, bool) {
				asked = append(asked, by)
				return tt.cands[by].named, tt.cands[by].known
			})
			if got != tt.want {
				t.Errorf("ChooseAttribution = %q (asked %v), want %q", got, asked, tt.want)
			}
			// Asked in order, and nothing after the winner.
			for i, by := range asked {
				if AttributionOrder[i] != by {
					t.Errorf("asked %v, not in AttributionOrder", asked)
				}
			}
			if got != "" && asked[len(asked)-1] != got {
				t.Errorf("asked %v after the winner %q", asked, got)
			}
		})
	}
}
