package hrflowtest

import "testing"

// TestReferenceClash stores two jobs whose references share a hash, as
// refHash may give two references among billions: each must still be
// found by its own reference, and removing one must leave the other.
func TestReferenceClash(t *testing.T) {
	b := newBoard("b", &codec{})
	store := func(ref string, key byte) *entry {
		t.Helper()
		e := &entry{data: ref, refLen: uint32(len(ref))}
		e.key[0] = key
		return b.insert(e)
	}
	first := store("first", 1)
	// The second reference's hash as if it were the first's.
	b.byRef[refHash("second")] = first.slot
	second := store("second", 2)
	delete(b.byRef, refHash("second"))
	if _, ok := b.refClash["second"]; !ok {
		t.Fatalf("the second reference is not in refClash: %v", b.refClash)
	}
	for _, want := range []*entry{first, second} {
		if got := b.find("", want.reference()); got != want {
			t.Errorf("find(%q) = %v, want the job stored with it", want.reference(), got)
		}
	}
	b.remove(first)
	if got := b.find("", "first"); got != nil {
		t.Errorf("find(first) after its removal = %v, want nil", got)
	}
	if got := b.find("", "second"); got != second {
		t.Errorf("find(second) after the first's removal = %v, want the second job", got)
	}
	b.remove(second)
	if got := b.find("", "second"); got != nil || len(b.refClash) != 0 {
		t.Errorf("after both removals: find(second) = %v, refClash %v; want nil and empty", got, b.refClash)
	}
}

// TestSlabKeepsEntries grows a slab over several chunks: every entry keeps
// its slot and its address.
func TestSlabKeepsEntries(t *testing.T) {
	var s slab
	const n = 3*slabChunk + 7
	stored := make([]*entry, n)
	for i := range n {
		stored[i] = s.add(&entry{id: uint32(i)})
	}
	for i, e := range stored {
		if got := s.at(uint32(i)); got != e || got.id != uint32(i) || got.slot != uint32(i) {
			t.Fatalf("slot %d: entry %p (id %d, slot %d), want %p with id and slot %d", i, got, got.id, got.slot, e, i)
		}
	}
}
