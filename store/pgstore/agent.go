package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// CreateAgent adds an agent. ErrNotFound if its IdP does not exist, ErrExists
// if the name is taken or another agent holds the same IdP subject.
func (s *Store) CreateAgent(ctx context.Context, a *store.Agent, ev store.AuditEvent) (store.Revision, error) {
	na := *a
	na.Normalize()
	if err := na.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "create agent", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		if found, err := exists(ctx, tx, `SELECT true FROM agents WHERE name = $1`, na.Name); err != nil || found {
			return nil, cmp(err, alreadyExists("agent", na.Name))
		}
		if err := checkSubject(ctx, tx, &na); err != nil {
			return nil, err
		}
		na.CreatedAt, na.UpdatedAt = now, now
		if err := putAgent(ctx, tx, &na); err != nil {
			return nil, err
		}
		return []store.Change{agentChange(na)}, nil
	})
	if err != nil {
		return 0, err
	}
	*a = na
	return rev, nil
}

func agentChange(a store.Agent) store.Change {
	return store.Change{Kind: store.KindAgent, Name: a.Name, Agent: &a}
}

// checkSubject checks a's IdP exists and its subject is not another agent's.
func checkSubject(ctx context.Context, tx pgx.Tx, a *store.Agent) error {
	if a.IdP == "" {
		return nil
	}
	// FOR SHARE keeps the IdP from being deleted under us.
	if found, err := exists(ctx, tx, `SELECT true FROM idps WHERE name = $1 FOR SHARE`, a.IdP); err != nil || !found {
		return cmp(err, notFound("idp", a.IdP))
	}
	var owner string
	err := tx.QueryRow(ctx, `SELECT name FROM agents WHERE idp = $1 AND subject = $2`, a.IdP, a.Subject).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	case owner != a.Name:
		return fmt.Errorf("subject %q of idp %q belongs to agent %q: %w", a.Subject, a.IdP, owner, store.ErrExists)
	}
	return nil
}

func putAgent(ctx context.Context, tx pgx.Tx, a *store.Agent) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode agent %q: %w", a.Name, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO agents (name, idp, subject, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET idp = excluded.idp, subject = excluded.subject, doc = excluded.doc`,
		a.Name, nullable(a.IdP), nullable(a.Subject), doc)
	return err
}

// nullable maps "" to NULL, so that agents without an IdP do not collide
// on the (idp, subject) uniqueness.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UpdateAgent replaces an agent's settings, keeping its creation time.
func (s *Store) UpdateAgent(ctx context.Context, a *store.Agent, ev store.AuditEvent) (store.Revision, error) {
	na := *a
	na.Normalize()
	if err := na.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "update agent", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		var old store.Agent
		found, err := getDoc(ctx, tx, &old, `SELECT doc FROM agents WHERE name = $1 FOR UPDATE`, na.Name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, notFound("agent", na.Name)
		}
		if err := checkSubject(ctx, tx, &na); err != nil {
			return nil, err
		}
		na.CreatedAt, na.UpdatedAt = old.CreatedAt, now
		if err := putAgent(ctx, tx, &na); err != nil {
			return nil, err
		}
		return []store.Change{agentChange(na)}, nil
	})
	if err != nil {
		return 0, err
	}
	*a = na
	return rev, nil
}

// DeleteAgent removes an agent with its grants and tokens (foreign keys
// cascade) in one transaction.
func (s *Store) DeleteAgent(ctx context.Context, name string, ev store.AuditEvent) (store.Revision, error) {
	return s.mutate(ctx, "delete agent", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM agents WHERE name = $1`, name)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, notFound("agent", name)
		}
		return []store.Change{{Kind: store.KindAgent, Deleted: true, Name: name}}, nil
	})
}

// CreateIdP adds an identity provider; ErrExists if the name is taken.
func (s *Store) CreateIdP(ctx context.Context, p *store.IdP, ev store.AuditEvent) (store.Revision, error) {
	np := *p
	np.Normalize()
	if err := np.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "create idp", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		if found, err := exists(ctx, tx, `SELECT true FROM idps WHERE name = $1`, np.Name); err != nil || found {
			return nil, cmp(err, alreadyExists("idp", np.Name))
		}
		np.CreatedAt = now
		doc, err := json.Marshal(&np)
		if err != nil {
			return nil, fmt.Errorf("encode idp %q: %w", np.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO idps (name, doc) VALUES ($1, $2)`, np.Name, doc); err != nil {
			return nil, err
		}
		p := np
		return []store.Change{{Kind: store.KindIdP, Name: np.Name, IdP: &p}}, nil
	})
	if err != nil {
		return 0, err
	}
	*p = np
	return rev, nil
}

// DeleteIdP removes an identity provider; ErrConflict naming the agents that
// still use it.
func (s *Store) DeleteIdP(ctx context.Context, name string, ev store.AuditEvent) (store.Revision, error) {
	return s.mutate(ctx, "delete idp", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		if found, err := exists(ctx, tx, `SELECT true FROM idps WHERE name = $1 FOR UPDATE`, name); err != nil || !found {
			return nil, cmp(err, notFound("idp", name))
		}
		const show = 10
		rows, err := tx.Query(ctx, `SELECT name FROM agents WHERE idp = $1 ORDER BY name LIMIT $2`, name, show+1)
		if err != nil {
			return nil, err
		}
		users, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		if len(users) > 0 {
			var total int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM agents WHERE idp = $1`, name).Scan(&total); err != nil {
				return nil, err
			}
			list, more := users[:min(len(users), show)], ""
			if total > show {
				more = fmt.Sprintf(" and %d more", total-show)
			}
			return nil, fmt.Errorf("idp %q is used by agent(s) %s%s; remove them or move them to another idp first: %w",
				name, strings.Join(list, ", "), more, store.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM idps WHERE name = $1`, name); err != nil {
			return nil, err
		}
		return []store.Change{{Kind: store.KindIdP, Deleted: true, Name: name}}, nil
	})
}

// PutGrant creates or replaces the grant for (g.Agent, g.Backend); a
// replaced grant keeps its creation time. ErrNotFound names the missing agent
// or backend.
func (s *Store) PutGrant(ctx context.Context, g *store.Grant, ev store.AuditEvent) (store.Revision, error) {
	ng := *g
	ng.Methods = slices.Clone(g.Methods)
	ng.Paths = slices.Clone(g.Paths)
	ng.Normalize()
	if err := ng.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "put grant", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		if found, err := exists(ctx, tx, `SELECT true FROM agents WHERE name = $1 FOR SHARE`, ng.Agent); err != nil || !found {
			return nil, cmp(err, notFound("agent", ng.Agent))
		}
		if found, err := exists(ctx, tx, `SELECT true FROM backends WHERE name = $1 FOR SHARE`, ng.Backend); err != nil || !found {
			return nil, cmp(err, notFound("backend", ng.Backend))
		}
		var old store.Grant
		found, err := getDoc(ctx, tx, &old, `SELECT doc FROM grants WHERE agent = $1 AND backend = $2 FOR UPDATE`, ng.Agent, ng.Backend)
		if err != nil {
			return nil, err
		}
		ng.CreatedAt = now
		if found {
			ng.CreatedAt = old.CreatedAt
		}
		doc, err := json.Marshal(&ng)
		if err != nil {
			return nil, fmt.Errorf("encode grant: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO grants (agent, backend, doc) VALUES ($1, $2, $3)
			ON CONFLICT (agent, backend) DO UPDATE SET doc = excluded.doc`, ng.Agent, ng.Backend, doc); err != nil {
			return nil, err
		}
		gr := ng
		return []store.Change{{Kind: store.KindGrant, GrantAgent: ng.Agent, Name: ng.Backend, Grant: &gr}}, nil
	})
	if err != nil {
		return 0, err
	}
	*g = ng
	return rev, nil
}

// DeleteGrant removes the grant for (agent, backend); ErrNotFound if none.
func (s *Store) DeleteGrant(ctx context.Context, agent, backend string, ev store.AuditEvent) (store.Revision, error) {
	return s.mutate(ctx, "delete grant", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM grants WHERE agent = $1 AND backend = $2`, agent, backend)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, fmt.Errorf("grant for agent %q on backend %q: %w", agent, backend, store.ErrNotFound)
		}
		return []store.Change{{Kind: store.KindGrant, Deleted: true, GrantAgent: agent, Name: backend}}, nil
	})
}

// CreateToken stores a minted token's hash. ErrNotFound if the agent does not
// exist, ErrExists if the id is taken.
func (s *Store) CreateToken(ctx context.Context, t *store.Token, ev store.AuditEvent) (store.Revision, error) {
	nt := *t
	nt.Hash = slices.Clone(t.Hash)
	if err := nt.Validate(); err != nil {
		return 0, err
	}
	rev, err := s.mutate(ctx, "create token", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		if found, err := exists(ctx, tx, `SELECT true FROM agents WHERE name = $1 FOR SHARE`, nt.Agent); err != nil || !found {
			return nil, cmp(err, notFound("agent", nt.Agent))
		}
		if found, err := exists(ctx, tx, `SELECT true FROM tokens WHERE id = $1`, nt.ID); err != nil || found {
			return nil, cmp(err, alreadyExists("token", nt.ID))
		}
		nt.CreatedAt = now
		if err := putToken(ctx, tx, &nt); err != nil {
			return nil, err
		}
		return []store.Change{tokenChange(nt)}, nil
	})
	if err != nil {
		return 0, err
	}
	*t = nt
	return rev, nil
}

func tokenChange(t store.Token) store.Change {
	return store.Change{Kind: store.KindToken, Name: t.ID, Token: &t}
}

func putToken(ctx context.Context, tx pgx.Tx, t *store.Token) error {
	doc, err := json.Marshal(t) // Hash is json:"-": it goes in its own column
	if err != nil {
		return fmt.Errorf("encode token %q: %w", t.ID, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO tokens (id, agent, hash, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, t.ID, t.Agent, t.Hash, doc)
	return err
}

// RevokeToken marks a token revoked at at (now if zero) and returns it.
// Revoking a revoked token keeps the first revocation time.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, ev store.AuditEvent) (*store.Token, store.Revision, error) {
	var t store.Token
	rev, err := s.mutate(ctx, "revoke token", ev, func(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Change, error) {
		var doc []byte
		err := tx.QueryRow(ctx, `SELECT doc, hash FROM tokens WHERE id = $1 FOR UPDATE`, id).Scan(&doc, &t.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, notFound("token", id)
		}
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(doc, &t); err != nil {
			return nil, fmt.Errorf("decode token %q: %w", id, err)
		}
		if t.RevokedAt.IsZero() {
			t.RevokedAt = at.UTC().Round(0)
			if at.IsZero() {
				t.RevokedAt = now
			}
			if err := putToken(ctx, tx, &t); err != nil {
				return nil, err
			}
		}
		return []store.Change{tokenChange(t)}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	return &t, rev, nil
}
