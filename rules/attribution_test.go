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
