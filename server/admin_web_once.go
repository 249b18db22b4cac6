package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
)

// Secrets made by a form are shown once, after a redirect
// (post/redirect/get): the form stores them in a one-time slot
// (store/shown_once.go) and redirects to the program page with the slot's
// id; that page takes the slot (reading and deleting it in one statement)
// and shows them. Reloading it, or going back to it, shows a note instead
// and makes nothing new, and the form is never sent again by the browser.
//
// The slot is a row rather than memory, so the next request may reach
// any instance. It belongs to the session (the hash of its cookie token)
// and is sealed with AES-256-GCM under a key derived from the cookie's
// token, which only the browser holds: the database alone (a back-up, a
// copy of the file) does not reveal an API key that is otherwise stored
// only as a hash. It expires after shownOnceTTL, shown or not.

const shownOnceTTL = 10 * time.Minute

// shownOnce is what a slot holds: the secrets and the notice above them.
type shownOnce struct {
	Flash   string        `json:"flash"`
	Secrets []shownSecret `json:"secrets"`
}

// sealKey is the session's key for its slots.
func (s *session) sealKey() []byte {
	m := hmac.New(sha256.New, []byte(s.token))
	m.Write([]byte("potrack admin shown-once"))
	return m.Sum(nil)
}

func (s *session) aead() cipher.AEAD {
	block, err := aes.NewCipher(s.sealKey())
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return gcm
}

// seal encrypts v for this session, bound to the slot's id.
func (s *session) seal(id string, v *shownOnce) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	gcm := s.aead()
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, []byte(id))), nil
}

func (s *session) unseal(id, sealed string) (*shownOnce, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	gcm := s.aead()
	if err != nil || len(b) < gcm.NonceSize() {
		return nil, errors.New("shown-once slot: not sealed by us")
	}
	plain, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], []byte(id))
	if err != nil {
		return nil, err
	}
	var v shownOnce
	return &v, json.Unmarshal(plain, &v)
}

// showOnce stores v in a new slot of the session and redirects to the
// program's page, which shows it.
func (s *Server) showOnce(c *fiber.Ctx, sess *session, programID string, v *shownOnce) error {
	id := randomToken(16)
	sealed, err := sess.seal(id, v)
	if err != nil {
		return err
	}
	hash := hashSecret(sess.token)
	if err := s.store.Write(c.UserContext(), func(tx *store.Tx) error {
		return tx.InsertShownOnce(id, hash, sealed, shownOnceTTL)
	}); err != nil {
		return err
	}
	return c.Redirect("/admin/programs/"+url.PathEscape(programID)+"?shown="+id+"#secrets", fiber.StatusSeeOther)
}

// takeShown takes the slot a program page was sent to (?shown=ID). It
// returns nil when the slot is gone: shown already, expired, or never
// this session's.
func (s *Server) takeShown(c *fiber.Ctx, sess *session, id string) (*shownOnce, error) {
	if len(id) != 26 { // randomToken(16)
		return nil, nil
	}
	hash := hashSecret(sess.token)
	var sealed string
	err := s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
		sealed, err = tx.TakeShownOnce(id, hash)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := sess.unseal(id, sealed)
	if err != nil {
		return nil, nil // sealed under another cookie: not this session's
	}
	return v, nil
}

// shownAgain is the note in place of secrets already shown.
const shownAgain = "The secrets made here were shown once and are not shown again. If you did not copy them, make new ones under Keys and integrations."
