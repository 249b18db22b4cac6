package store

import (
	"context"
	"sync"
	"testing"
)

// TestProgramCacheConcurrentChange: reads of the cache while commits change
// the program (run under -race: the cache's maps are replaced under its
// lock). Found by a review.
func TestProgramCacheConcurrentChange(t *testing.T) {
	s, _ := openTest(t)
	insertProgram(t, s, "prog")
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.CachedProgram(ctx, "prog"); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		if err := s.Write(ctx, func(tx *Tx) error {
			p, err := tx.Program("prog")
			if err != nil {
				return err
			}
			return tx.UpdateProgram(p)
		}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
