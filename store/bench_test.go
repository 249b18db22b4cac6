package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// The benchmarks compare one caller writing at a time (every write its own
// commit and fsync) with many concurrent callers whose writes the single
// writer groups into shared commits. Report their ratio from one run.

func benchWrite(b *testing.B, parallel bool) {
	dir := b.TempDir()
	s, err := Open(dir + "/bench.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := &Program{ID: "bench", Name: "bench", Currency: "USD", CookieDays: 30, ReferralParams: []string{"aff"}, Attribution: "last"}
	if err := s.Write(context.Background(), func(tx *Tx) error { return tx.InsertProgram(p, "h") }); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	write := func() {
		i := n.Add(1)
		err := s.Write(context.Background(), func(tx *Tx) error {
			return tx.InsertPartner(&Partner{ProgramID: "bench", Key: fmt.Sprint("p", i)})
		})
		if err != nil {
			b.Error(err)
		}
	}
	b.ResetTimer()
	if parallel {
		b.SetParallelism(32) // many HTTP handlers waiting on the writer at once
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				write()
			}
		})
	} else {
		for i := 0; i < b.N; i++ {
			write()
		}
	}
}

func BenchmarkWriteSerial(b *testing.B)      { benchWrite(b, false) }
func BenchmarkWriteGroupCommit(b *testing.B) { benchWrite(b, true) }
