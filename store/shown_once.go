package store

import (
	"database/sql"
	"errors"
	"time"
)

// Secrets shown once after a redirect. A form that makes a secret (a new
// program, a rotation) stores it in a slot and redirects to the page that
// shows it (post/redirect/get), so reloading that page shows nothing new
// and makes nothing new. A slot is a row, so it works whichever instance
// serves the next request; it belongs to one session (the hash of its
// cookie's token), holds the secrets sealed by the server with a key only
// that cookie gives (so the row alone, in a back-up say, reveals nothing),
// is deleted by the read that takes it, and expires soon after.

// InsertShownOnce stores a slot for the session until ttl from now, and
// forgets expired ones.
func (t *Tx) InsertShownOnce(id, sessionHash, sealed string, ttl time.Duration) error {
	if _, err := t.exec(`DELETE FROM shown_once WHERE expires_at <= ?`, unix(t.now)); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO shown_once (id, session_hash, sealed, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		id, sessionHash, sealed, unix(t.now), unix(t.now.Add(ttl)))
	if isUnique(err) {
		return ErrExists
	}
	return err
}

// TakeShownOnce deletes the session's slot and returns what it held;
// ErrNotFound when it is gone, expired or another session's. One
// statement, so of two requests racing for a slot only one gets it.
func (t *Tx) TakeShownOnce(id, sessionHash string) (string, error) {
	var sealed string
	err := t.queryRow(`DELETE FROM shown_once WHERE id = ? AND session_hash = ? AND expires_at > ? RETURNING sealed`,
		id, sessionHash, unix(t.now)).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return sealed, err
}

// DeleteShownOnceOf forgets a session's slots (at sign-out).
func (t *Tx) DeleteShownOnceOf(sessionHash string) error {
	_, err := t.exec(`DELETE FROM shown_once WHERE session_hash = ?`, sessionHash)
	return err
}
