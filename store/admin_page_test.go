package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestArchivePrograms: archiving records when, restoring clears it, a
// second archive keeps the first time, an unknown program is ErrNotFound,
// and the program reads the same either way; on both engines.
func TestArchivePrograms(t *testing.T) {
	for name, open := range openEngines() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			insertProgram(t, s, "prog")
			insertProgram(t, s, "other")
			archive := func(id string, on bool) error {
				return s.Write(ctx, func(tx *Tx) error { return tx.SetProgramArchived(id, on) })
			}
			if err := archive("prog", true); err != nil {
				t.Fatal(err)
			}
			got, err := s.ArchivedPrograms(ctx)
			if err != nil || len(got) != 1 || got["prog"].IsZero() {
				t.Fatalf("archived %v (%v), want prog only", got, err)
			}
			first := got["prog"]
			if err := archive("prog", true); err != nil {
				t.Fatalf("archiving again: %v", err)
			}
			if again, _ := s.ArchivedPrograms(ctx); !again["prog"].Equal(first) {
				t.Errorf("archiving again moved the time from %v to %v", first, again["prog"])
			}
			if p, err := s.Program(ctx, "prog"); err != nil || p.Name == "" {
				t.Fatalf("the archived program reads %+v (%v)", p, err)
			}
			if err := archive("prog", false); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.ArchivedPrograms(ctx); len(got) != 0 {
				t.Errorf("restored, still archived: %v", got)
			}
			if err := archive("prog", false); err != nil {
				t.Errorf("restoring again: %v", err)
			}
			if err := archive("nope", true); !errors.Is(err, ErrNotFound) {
				t.Errorf("archiving an unknown program: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestShownOnce: a slot is taken once, only by its session, and not once
// expired; expired slots go with the next insert; on both engines.
func TestShownOnce(t *testing.T) {
	for name, open := range openEngines() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			write := func(fn func(tx *Tx) error) error { return s.Write(ctx, fn) }
			take := func(id, sess string) (string, error) {
				var v string
				err := write(func(tx *Tx) (err error) { v, err = tx.TakeShownOnce(id, sess); return err })
				return v, err
			}
			if err := write(func(tx *Tx) error { return tx.InsertShownOnce("a", "sess1", "sealed-a", time.Minute) }); err != nil {
				t.Fatal(err)
			}
			if err := write(func(tx *Tx) error { return tx.InsertShownOnce("a", "sess1", "again", time.Minute) }); !errors.Is(err, ErrExists) {
				t.Errorf("a second slot with the same id: %v, want ErrExists", err)
			}
			if _, err := take("a", "sess2"); !errors.Is(err, ErrNotFound) {
				t.Errorf("another session took the slot: %v", err)
			}
			if v, err := take("a", "sess1"); err != nil || v != "sealed-a" {
				t.Fatalf("take: %q, %v", v, err)
			}
			if _, err := take("a", "sess1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("taken twice: %v", err)
			}
			if err := write(func(tx *Tx) error { return tx.InsertShownOnce("old", "sess1", "x", -time.Second) }); err != nil {
				t.Fatal(err)
			}
			if _, err := take("old", "sess1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("an expired slot was taken: %v", err)
			}
			if err := write(func(tx *Tx) error { return tx.InsertShownOnce("b", "sess1", "y", time.Minute) }); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM shown_once WHERE id = 'old'`); n != 0 {
				t.Errorf("the expired slot is still stored")
			}
			if err := write(func(tx *Tx) error { return tx.DeleteShownOnceOf("sess1") }); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.CountForTest(ctx, `SELECT count(*) FROM shown_once`); n != 0 {
				t.Errorf("%d slots left after the session's were deleted", n)
			}
		})
	}
}
