package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pulljobs/pulljobs/pkg/cli"
	"github.com/pulljobs/pulljobs/pkg/format"
	"github.com/pulljobs/pulljobs/pkg/francetravail"
	"github.com/pulljobs/pulljobs/pkg/hrflow"
)

// formatOffers reads offers from in, applies chain to each, writes one job
// per line (compact JSON) to out; failures go to errw as "offer <id>:
// <outcome>: <message>" lines, unreadable input as "input: <where>: <why>"
// lines. in may be NDJSON, a JSON array of offers or a whole search response
// (see format.ReadOffers). Discarded offers are omitted.
//
// It returns the exit code: 0 (cli.ExitSuccess) when all succeeded
// (discards are not failures), 3 (cli.ExitSuccessWithFailures) when some
// failed (a format or logics failure, or an unreadable input line: it goes on
// with the next one where it can), 1 (cli.ExitFatal) when it had to
// stop (out not writable, or ctx done).
//
// Each offer goes through chain.Apply and hrflow.AppendJSON, as in the formatter
// worker, so what it prints is what the worker would push.
func formatOffers(ctx context.Context, chain *format.Chain, in io.Reader, out, errw io.Writer) int {
	w := bufio.NewWriter(out)
	var buf []byte // one job's JSON, reused
	failed := false
	var stop error // why the reading was stopped from yield
	err := format.ReadOffers(in, func(offer francetravail.Offer) error {
		if err := ctx.Err(); err != nil {
			stop = err
			return err
		}
		job, outcome, err := chain.Apply(offer)
		if outcome == format.Kept {
			if buf, err = hrflow.AppendJSON(buf[:0], job); err == nil {
				buf = append(buf, '\n')
				if _, err := w.Write(buf); err != nil {
					stop = fmt.Errorf("write: %w", err)
					return stop
				}
				return nil
			}
			outcome, err = format.FormatFailed, fmt.Errorf("encode job: %w", err)
		}
		if outcome != format.Discarded {
			failed = true
			reportFailure(errw, offer, outcome, err)
		}
		return nil
	})
	if ferr := w.Flush(); ferr != nil && stop == nil {
		stop = fmt.Errorf("write: %w", ferr)
	}
	if stop != nil {
		fmt.Fprintf(errw, "formatter: stopped: %v\n", stop)
		return cli.ExitFatal
	}
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintf(errw, "input: %v\n", e)
		}
		return cli.ExitSuccessWithFailures
	}
	if failed {
		return cli.ExitSuccessWithFailures
	}
	return cli.ExitSuccess
}

// reportFailure writes "offer <id>: <outcome>: <message>".
func reportFailure(errw io.Writer, offer francetravail.Offer, outcome format.Outcome, err error) {
	var ae *format.ApplyError
	id, msg := "", err.Error()
	if errors.As(err, &ae) {
		id, msg = ae.OfferID, ae.Message()
	} else {
		id, _ = offer.ID()
	}
	if id == "" {
		id = "(no id)"
	}
	fmt.Fprintf(errw, "offer %s: %s: %s\n", id, outcome, msg)
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
