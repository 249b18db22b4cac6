package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/potrack/potrack/store"
	"github.com/potrack/potrack/tracking"
)

// The REST API of SPEC.md: server to server, Partnero-compatible shapes,
// one program per API key.

const (
	maxBatch     = 100
	defaultLimit = 15
	maxLimit     = 250
)

func restOK(c *fiber.Ctx, status int, data any) error {
	return c.Status(status).JSON(fiber.Map{"data": data, "status": 1})
}

// created answers 201, or 200 with Idempotent-Replayed when the key was
// already stored with the same content.
func created(c *fiber.Ctx, res tracking.Result, data any) error {
	if res == tracking.Replayed {
		c.Set("Idempotent-Replayed", "true")
		return restOK(c, fiber.StatusOK, data)
	}
	return restOK(c, fiber.StatusCreated, data)
}

// keyParam is the :key path segment, percent-decoded.
func keyParam(c *fiber.Ctx) (string, error) {
	k, err := url.PathUnescape(c.Params("key"))
	if err != nil || checkText("key", k, maxKeyLen, true) != nil {
		return "", invalid("key", "The key in the address is not valid.")
	}
	return k, nil
}

func (s *Server) v1CreatePartner(c *fiber.Ctx) error {
	var req struct {
		Key   flexString `json:"key"`
		Email string     `json:"email"`
		Name  string     `json:"name"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in := tracking.PartnerInput{Key: string(req.Key), Email: req.Email, Name: req.Name}
	if err := checkText("key", in.Key, maxKeyLen, true); err != nil {
		return err
	}
	if err := checkText("name", in.Name, maxNameLen, false); err != nil {
		return err
	}
	if err := checkEmail("email", in.Email); err != nil {
		return err
	}
	p := programOf(c)
	var (
		partner *store.Partner
		res     tracking.Result
	)
	err := s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
		partner, res, err = tracking.CreatePartner(tx, p, in)
		return err
	})
	if err != nil {
		return err
	}
	return created(c, res, viewPartner(partner))
}

func (s *Server) v1GetPartner(c *fiber.Ctx) error {
	key, err := keyParam(c)
	if err != nil {
		return err
	}
	partner, err := s.store.Partner(c.UserContext(), programOf(c).ID, store.PartnerRef{Key: key})
	if errors.Is(err, store.ErrNotFound) {
		return errPartnerMissing
	}
	if err != nil {
		return err
	}
	totals, err := s.store.PartnerTotals(c.UserContext(), partner.ID)
	if err != nil {
		return err
	}
	coupons, _, err := s.store.Coupons(c.UserContext(), store.CouponFilter{ProgramID: partner.ProgramID, PartnerID: partner.ID})
	if err != nil {
		return err
	}
	codes := make([]string, len(coupons))
	for i, k := range coupons {
		codes[i] = k.Code
	}
	balances, err := s.store.Balances(c.UserContext(), partner.ProgramID, partner.ID)
	if err != nil {
		return err
	}
	bv := viewBalances(balances)
	v := viewPartner(partner)
	v.Totals = viewPartnerTotals(totals)
	v.Coupons = &codes
	v.Balances = &bv
	return restOK(c, fiber.StatusOK, v)
}

func (s *Server) v1CreateCustomer(c *fiber.Ctx) error {
	var req customerJSONIn
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input("")
	if err != nil {
		return err
	}
	ref, err := req.Partner.ref("partner")
	if err != nil {
		return err
	}
	p := programOf(c)
	var (
		customer *store.Customer
		res      tracking.Result
	)
	err = s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
		customer, res, err = tracking.CreateCustomer(tx, p, in, ref, tracking.REST)
		return err
	})
	if err != nil {
		return err
	}
	return created(c, res, viewCustomer(customer))
}

func (s *Server) v1GetCustomer(c *fiber.Ctx) error {
	key, err := keyParam(c)
	if err != nil {
		return err
	}
	customer, err := s.store.Customer(c.UserContext(), programOf(c).ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return errCustomerMissing
	}
	if err != nil {
		return err
	}
	return restOK(c, fiber.StatusOK, viewCustomer(customer))
}

// v1CreateTransactions takes one transaction or {"transactions": [...]}. A
// batch is all or nothing: one invalid entry stores none of them.
func (s *Server) v1CreateTransactions(c *fiber.Ctx) error {
	var probe struct {
		Transactions json.RawMessage `json:"transactions"`
	}
	if err := decodeJSON(c, &probe); err != nil {
		return err
	}
	p := programOf(c)
	if probe.Transactions == nil {
		var req transactionJSONIn
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		in, err := req.input(p)
		if err != nil {
			return err
		}
		in.Source = store.SourceAPI
		in.Verified = true
		var (
			tr  *store.Transaction
			res tracking.Result
		)
		err = s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
			tr, res, err = tracking.RecordTransaction(tx, p, in, tracking.REST)
			return err
		})
		if err != nil {
			return transactionError(err)
		}
		return created(c, res, viewTransaction(tr))
	}

	var reqs []transactionJSONIn
	if err := json.Unmarshal(probe.Transactions, &reqs); err != nil {
		return errBadRequest.WithMessage("'transactions' must be an array of transaction objects.").WithField("transactions")
	}
	if len(reqs) == 0 || len(reqs) > maxBatch {
		return invalid("transactions", fmt.Sprintf("A batch holds 1 to %d transactions.", maxBatch))
	}
	ins := make([]tracking.TransactionInput, len(reqs))
	for i := range reqs {
		in, err := reqs[i].input(p)
		if err != nil {
			return inBatch(i, err)
		}
		in.Source, in.Verified = store.SourceAPI, true
		ins[i] = in
	}
	out := make([]*transactionView, len(ins))
	allReplayed := true
	err := s.store.Write(c.UserContext(), func(tx *store.Tx) error {
		allReplayed = true // the function may run twice (store.Write)
		for i, in := range ins {
			tr, res, err := tracking.RecordTransaction(tx, p, in, tracking.REST)
			if err != nil {
				return inBatch(i, transactionError(err))
			}
			allReplayed = allReplayed && res == tracking.Replayed
			out[i] = viewTransaction(tr)
		}
		return nil
	})
	if err != nil {
		return err
	}
	res := tracking.Created
	if allReplayed {
		res = tracking.Replayed
	}
	return created(c, res, out)
}

// transactionError names the field of a transaction body that an error
// of the tracking rules is about.
func transactionError(err error) error {
	if errors.Is(err, tracking.ErrPartnerNotFound) {
		return errPartnerNotFound.WithField("customer.partner")
	}
	return err
}

// inBatch names the batch entry an error belongs to.
func inBatch(i int, err error) error {
	e := asError(err)
	if e.Status >= 500 {
		return err
	}
	field := fmt.Sprintf("transactions[%d]", i)
	if e.Field != "" {
		field += "." + e.Field
	}
	return e.WithField(field)
}

func (s *Server) v1GetTransaction(c *fiber.Ctx) error {
	key, err := keyParam(c)
	if err != nil {
		return err
	}
	tr, err := s.store.Transaction(c.UserContext(), programOf(c).ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return errTransactionMissing
	}
	if err != nil {
		return err
	}
	return restOK(c, fiber.StatusOK, viewTransaction(tr))
}

// v1RefundTransaction refunds the whole transaction and reverses its
// rewards; repeating it changes nothing.
func (s *Server) v1RefundTransaction(c *fiber.Ctx) error {
	key, err := keyParam(c)
	if err != nil {
		return err
	}
	p := programOf(c)
	var tr *store.Transaction
	err = s.store.Write(c.UserContext(), func(tx *store.Tx) (err error) {
		tr, err = tracking.Refund(tx, p, key, -1)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return errTransactionMissing
	}
	if err != nil {
		return err
	}
	return restOK(c, fiber.StatusOK, viewTransaction(tr))
}

func (s *Server) v1ListTransactions(c *fiber.Ctx) error {
	limit, err := intQuery(c, "limit", defaultLimit, 1, maxLimit)
	if err != nil {
		return err
	}
	page, err := intQuery(c, "page", 1, 1, 1_000_000)
	if err != nil {
		return err
	}
	f := store.TransactionFilter{
		ProgramID: programOf(c).ID, Key: c.Query("key"), CustomerKey: c.Query("customer"),
		PartnerKey: c.Query("partner"), Limit: limit, Offset: (page - 1) * limit,
	}
	list, total, err := s.store.Transactions(c.UserContext(), f)
	if err != nil {
		return err
	}
	data := make([]*transactionView, len(list))
	for i, tr := range list {
		data[i] = viewTransaction(tr)
	}
	return c.JSON(fiber.Map{"data": data, "links": pageLinks(c, page, limit, total), "meta": pageMeta(c, page, limit, total, len(list)), "status": 1})
}

func intQuery(c *fiber.Ctx, name string, def, min, max int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, invalid(name, fmt.Sprintf("%s must be a whole number from %d to %d.", name, min, max))
	}
	return n, nil
}

func lastPage(limit, total int) int {
	if total == 0 {
		return 1
	}
	return (total + limit - 1) / limit
}

// pageURL is this request's URL with another page number.
func pageURL(c *fiber.Ctx, page int) string {
	q := url.Values{}
	c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) { q.Set(string(k), string(v)) })
	q.Set("page", strconv.Itoa(page))
	return c.BaseURL() + c.Path() + "?" + q.Encode()
}

func pageLinks(c *fiber.Ctx, page, limit, total int) fiber.Map {
	last := lastPage(limit, total)
	links := fiber.Map{"first": pageURL(c, 1), "last": pageURL(c, last), "prev": nil, "next": nil}
	if page > 1 {
		links["prev"] = pageURL(c, min(page-1, last))
	}
	if page < last {
		links["next"] = pageURL(c, page+1)
	}
	return links
}

func pageMeta(c *fiber.Ctx, page, limit, total, n int) fiber.Map {
	meta := fiber.Map{"current_page": page, "per_page": limit, "total": total,
		"last_page": lastPage(limit, total), "path": c.BaseURL() + c.Path(), "from": nil, "to": nil}
	if n > 0 {
		from := (page-1)*limit + 1
		meta["from"], meta["to"] = from, from+n-1
	}
	return meta
}
