package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// An admin session is a row keyed by the SHA-256 of the random token in the
// merchant's cookie; the token itself is never stored, so a copy of the
// database cannot be turned into a session. The row is the only truth about
// a session: deleting it ends the session on every instance.

// AdminSession is a signed-in merchant's session.
type AdminSession struct {
	TokenHash string // SHA-256 of the cookie's token, hex
	AdminHash string // hash of the admin token the session was made under
	CreatedAt time.Time
	// LastSeenAt is updated at most every few minutes, so page views do
	// not each cost a write.
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// InsertAdminSession stores a new session that ends lifetime from now, and
// forgets expired ones.
func (t *Tx) InsertAdminSession(tokenHash, adminHash string, lifetime time.Duration) (*AdminSession, error) {
	if err := t.DeleteExpiredAdminSessions(); err != nil {
		return nil, err
	}
	s := &AdminSession{TokenHash: tokenHash, AdminHash: adminHash, CreatedAt: t.now, LastSeenAt: t.now,
		ExpiresAt: t.now.Add(lifetime)}
	_, err := t.exec(`INSERT INTO admin_sessions (token_hash, admin_hash, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		s.TokenHash, s.AdminHash, unix(s.CreatedAt), unix(s.LastSeenAt), unix(s.ExpiresAt))
	if isUnique(err) {
		return nil, ErrExists
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// AdminSession finds a session by its token's hash, expired or not;
// ErrNotFound when there is none.
func (s *Store) AdminSession(ctx context.Context, tokenHash string) (*AdminSession, error) {
	var (
		a                        AdminSession
		created, seen, expiresAt int64
	)
	err := s.read.QueryRowContext(ctx, `SELECT token_hash, admin_hash, created_at, last_seen_at, expires_at
		FROM admin_sessions WHERE token_hash = ?`, tokenHash).Scan(&a.TokenHash, &a.AdminHash, &created, &seen, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a.CreatedAt, a.LastSeenAt, a.ExpiresAt = fromUnix(created), fromUnix(seen), fromUnix(expiresAt)
	return &a, nil
}

// TouchAdminSession sets a session's last_seen_at to now. A session that
// is gone stays gone.
func (t *Tx) TouchAdminSession(tokenHash string) error {
	_, err := t.exec(`UPDATE admin_sessions SET last_seen_at = ? WHERE token_hash = ?`, unix(t.now), tokenHash)
	return err
}

// DeleteAdminSession ends one session; ending one that is gone is no error.
func (t *Tx) DeleteAdminSession(tokenHash string) error {
	_, err := t.exec(`DELETE FROM admin_sessions WHERE token_hash = ?`, tokenHash)
	return err
}

// DeleteAdminSessions ends every session.
func (t *Tx) DeleteAdminSessions() error {
	_, err := t.exec(`DELETE FROM admin_sessions`)
	return err
}

// DeleteExpiredAdminSessions forgets sessions whose time is up.
func (t *Tx) DeleteExpiredAdminSessions() error {
	_, err := t.exec(`DELETE FROM admin_sessions WHERE expires_at <= ?`, unix(t.now))
	return err
}
