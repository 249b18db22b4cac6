package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// AllAllowedOrigins returns the allowed_origins entries of every program.
// A CORS preflight names no program, so /collect answers it for an origin
// that any program allows.
func (s *Store) AllAllowedOrigins(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT allowed_origins FROM programs WHERE allowed_origins != '[]'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var origins []string
		if err := json.Unmarshal([]byte(raw), &origins); err != nil {
			return nil, fmt.Errorf("allowed_origins: %w", err)
		}
		out = append(out, origins...)
	}
	return out, rows.Err()
}
