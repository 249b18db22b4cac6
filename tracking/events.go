package tracking

import "github.com/potrack/potrack/store"

// announce records an event about obj for the program's webhook endpoints
// in the same write as the change it describes (store.Tx.Announce, the
// outbox): it commits with the change or not at all. The data it carries
// is the REST API's view of obj, rendered as the write runs, so an event
// shows the object as the change left it.
func announce(tx *store.Tx, p *store.Program, typ string, obj any) error {
	_, err := tx.Announce(p.ID, typ, obj)
	return err
}
