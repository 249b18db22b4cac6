package store

import (
	"context"
	"errors"
	"testing"
)

// TestProgramCache: cached programs follow a committed change at once, and
// a rotated API key stops finding its program at once.
func TestProgramCache(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog1")
	ctx := context.Background()
	for i := 0; i < 2; i++ { // the second read comes from memory
		got, err := s.CachedProgram(ctx, "prog1")
		if err != nil || got.Name != "prog1" {
			t.Fatalf("read %d: %+v %v", i, got, err)
		}
		if got, err := s.CachedProgramByAPIKeyHash(ctx, "hash-prog1"); err != nil || got.ID != "prog1" {
			t.Fatalf("by key, read %d: %+v %v", i, got, err)
		}
	}
	p, err := s.Program(ctx, "prog1")
	if err != nil {
		t.Fatal(err)
	}
	changed := *p
	changed.Name, changed.JSTracking = "New", true
	if err := s.Write(ctx, func(tx *Tx) error { return tx.UpdateProgram(&changed) }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CachedProgram(ctx, "prog1"); err != nil || got.Name != "New" || !got.JSTracking {
		t.Fatalf("after the change: %+v %v", got, err)
	}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetSecret("prog1", SecretAPIKey, "hash2") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CachedProgramByAPIKeyHash(ctx, "hash-prog1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the rotated key still finds the program: %v", err)
	}
	if got, err := s.CachedProgramByAPIKeyHash(ctx, "hash2"); err != nil || got.ID != "prog1" {
		t.Fatalf("the new key: %+v %v", got, err)
	}
	if _, err := s.CachedProgram(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown program: %v", err)
	}
}

func TestPartnerCache(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog1")
	ctx := context.Background()
	if _, err := s.CachedPartnerByKey(ctx, "prog1", "pat"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown partner: %v", err)
	}
	// A partner created after a miss is found: misses are not kept.
	partner := &Partner{ProgramID: "prog1", Key: "pat"}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.InsertPartner(partner) }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if got, err := s.CachedPartnerByKey(ctx, "prog1", "pat"); err != nil || got.ID != partner.ID {
			t.Fatalf("read %d: %+v %v", i, got, err)
		}
	}
	if _, err := s.CachedPartnerByKey(ctx, "other", "pat"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another program's partner: %v", err)
	}
}
