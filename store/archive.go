package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Archived programs: the merchant hides a program (a duplicate, a test,
// one that ended) from the admin home; it can be restored. Archiving
// changes nothing else: the program's /collect, REST API and gateway
// webhooks keep working (docs/admin.md says why).

// SetProgramArchived archives a program (now) or restores it; a program
// already in that state stays as it is.
func (t *Tx) SetProgramArchived(programID string, archived bool) error {
	t.programsChanged = true
	query := `UPDATE programs SET archived_at = ?, updated_at = ? WHERE id = ? AND archived_at = 0`
	at := unix(t.now)
	if !archived {
		query = `UPDATE programs SET archived_at = ?, updated_at = ? WHERE id = ? AND archived_at <> 0`
		at = 0
	}
	res, err := t.exec(query, at, unix(t.now), programID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	// Nothing changed: already in that state, or no such program.
	var one int
	err = t.queryRow(`SELECT 1 FROM programs WHERE id = ?`, programID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// ArchivedPrograms maps each archived program's id to when it was archived.
func (s *Store) ArchivedPrograms(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, archived_at FROM programs WHERE archived_at <> 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			id string
			at int64
		)
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = fromUnix(at)
	}
	return out, rows.Err()
}
