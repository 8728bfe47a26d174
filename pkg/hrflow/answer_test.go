package hrflow

import (
	"encoding/json"
	"reflect"
	"testing"
)

// writeAnswer is an answer to a job write as HrFlow gives it: the whole job
// echoed.
const writeAnswer = `{"code":201,"message":"Job created","data":{"id":42,"key":"0a1b2c","reference":"123456A",
"board":{"key":"b0","name":"Board","type":"api","subtype":"python","environment":"production"},
"name":"Soudeur (H/F)","summary":"Poste de soudeur, travail en équipe.","location":{"text":"74 - ANNECY","lat":45.9,"lng":6.1},
"sections":[{"name":"pole_emploi_description","title":"Description","description":"Soudure TIG et MIG."}],
"tags":[{"name":"pole_emploi_romeCode","value":"H2913"}],"created_at":"2026-11-27T03:51:31.970Z",
"updated_at":"2026-11-29T10:32:49+0000","archived_at":null},"meta":{"version":"v1"}}`

// TestDecodeItem holds the write answers' fast reader to the general one:
// where it reads an answer, it reads what decode's envelope reads, and it
// leaves the rest (errors, odd shapes) to that path.
func TestDecodeItem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		fast   bool
	}{
		{"job echoed", writeAnswer, true},
		{"no meta", `{"code":200,"data":{"key":"k","updated_at":"2026-01-01T00:00:00+0000"}}`, true},
		{"no code", `{"data":{"key":"k"}}`, true},
		{"data null", `{"code":200,"data":null}`, true},
		{"no data", `{"code":200,"message":"ok"}`, true},
		{"code as a string", `{"code":"201","data":{"key":"k"}}`, false},
		{"error code in a 2xx", `{"code":400,"message":"Reference already exists","data":null}`, false},
		{"data an array", `{"code":200,"data":[{"key":"k"}]}`, false},
		{"key a number", `{"code":200,"data":{"key":12}}`, false},
		{"not JSON", `<html>`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *listItem
			meta, ok := decodeItem([]byte(tc.answer), &got)
			if ok != tc.fast {
				t.Fatalf("read by the fast path: %v, want %v", ok, tc.fast)
			}
			if !ok {
				return
			}
			var want *listItem
			env := envelope{Data: &want}
			if err := json.Unmarshal([]byte(tc.answer), &env); err != nil {
				t.Fatalf("general path: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("item %+v, want %+v", got, want)
			}
			if len(meta) != 0 || len(env.Meta) != 0 {
				var g, w any
				if json.Unmarshal(meta, &g) != nil || json.Unmarshal(env.Meta, &w) != nil || !reflect.DeepEqual(g, w) {
					t.Errorf("meta %s, want %s", meta, env.Meta)
				}
			}
		})
	}
}

// BenchmarkDecodeWriteAnswer reads a write's answer as the pusher needs it
// (key and dates) with the fast reader, against encoding/json through the
// envelope, in the same run.
func BenchmarkDecodeWriteAnswer(b *testing.B) {
	data := []byte(writeAnswer)
	b.Run("fastjson", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var it *listItem
			if _, ok := decodeItem(data, &it); !ok || it.Key == "" {
				b.Fatal("not read")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var it *listItem
			if err := json.Unmarshal(data, &envelope{Data: &it}); err != nil || it.Key == "" {
				b.Fatal("not read", err)
			}
		}
	})
}
