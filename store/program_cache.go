package store

import (
	"context"
	"sync"
	"time"
)

// Programs are read on every /collect call, REST request and webhook, and
// change rarely. The hot paths read them from memory: an entry lives
// programCacheTTL, and a commit that changes a program empties the cache
// of this process at once. The TTL bounds how long another process on the
// same database (several instances) may act on an old version: a change
// applies everywhere within programCacheTTL (SPEC.md: within 5 s).
const programCacheTTL = 2 * time.Second

// programCacheMax bounds the entries: ids come from the internet.
const programCacheMax = 10000

type programCache struct {
	mu    sync.Mutex
	gen   uint64 // bumped by every invalidation
	byID  map[string]cachedProgram
	byKey map[string]cachedProgram // by API key hash
}

type cachedProgram struct {
	p  *Program
	at time.Time
}

// get looks k up by id, or by API key hash when byKey. The maps are chosen
// under the lock: invalidate replaces them.
func (c *programCache) get(k string, byKey bool) (*Program, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byID
	if byKey {
		m = c.byKey
	}
	if e, ok := m[k]; ok && time.Since(e.at) < programCacheTTL {
		return e.p, c.gen
	}
	return nil, c.gen
}

// put keeps p unless the cache was invalidated since gen was read: a read
// that raced a change must not bring the old version back.
func (c *programCache) put(gen uint64, p *Program, apiKeyHash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.byID) >= programCacheMax || len(c.byKey) >= programCacheMax {
		c.byID, c.byKey = nil, nil
	}
	if c.byID == nil {
		c.byID, c.byKey = map[string]cachedProgram{}, map[string]cachedProgram{}
	}
	e := cachedProgram{p, time.Now()}
	c.byID[p.ID] = e
	if apiKeyHash != "" {
		c.byKey[apiKeyHash] = e
	}
}

func (c *programCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.byID, c.byKey = nil, nil
}

// CachedProgram is Program served from memory (see programCacheTTL). The
// program is shared between callers: never modify it.
func (s *Store) CachedProgram(ctx context.Context, id string) (*Program, error) {
	p, gen := s.programs.get(id, false)
	if p != nil {
		return p, nil
	}
	p, err := s.Program(ctx, id)
	if err != nil {
		return nil, err
	}
	s.programs.put(gen, p, "")
	return p, nil
}

// CachedProgramByAPIKeyHash is ProgramByAPIKeyHash served from memory. The
// program is shared between callers: never modify it.
func (s *Store) CachedProgramByAPIKeyHash(ctx context.Context, hash string) (*Program, error) {
	p, gen := s.programs.get(hash, true)
	if p != nil {
		return p, nil
	}
	p, err := s.ProgramByAPIKeyHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	s.programs.put(gen, p, hash)
	return p, nil
}

// Partners never change and are never deleted, so a partner found by key
// can be kept for good: /collect looks one up for every click. Only found
// partners are kept (a key can be created later, on any instance), and the
// map is bounded, since keys come from the internet.
type partnerCache struct {
	mu sync.Mutex
	m  map[string]*Partner
}

// CachedPartnerByKey is Partner by key, served from memory once found. The
// partner is shared between callers: never modify it.
func (s *Store) CachedPartnerByKey(ctx context.Context, programID, key string) (*Partner, error) {
	if p := s.partners.get(programID, key); p != nil {
		return p, nil
	}
	p, err := s.Partner(ctx, programID, PartnerRef{Key: key})
	if err != nil {
		return nil, err
	}
	s.partners.put(p)
	return p, nil
}

func (c *partnerCache) put(p *Partner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= programCacheMax*10 {
		c.m = map[string]*Partner{}
	}
	c.m[p.ProgramID+"\x00"+p.Key] = p
}

func (c *partnerCache) get(programID, key string) *Partner {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[programID+"\x00"+key]
}
