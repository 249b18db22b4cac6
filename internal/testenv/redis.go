package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis returns the URL of the Redis the tests use (POTRACK_TEST_REDIS,
// redis://127.0.0.1:6379/0 by default) and a key prefix of the test's own,
// whose keys are removed when the test ends. Without a Redis answering
// there, the test skips loudly, or fails under CI (Missing).
func Redis(t testing.TB) (url, prefix string) {
	t.Helper()
	url = os.Getenv("POTRACK_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("POTRACK_TEST_REDIS=%q: %v", url, err)
	}
	client := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		Missing(t, "Redis at "+url, "start redis-server on 127.0.0.1:6379, or set POTRACK_TEST_REDIS")
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix = "potrack-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		defer client.Close()
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return url, prefix
}
