package clickhouse

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzHeadersDecodeLikeJSONMarshal checks the hand-written header encoder
// against encoding/json: both must decode to the same map.
func FuzzHeadersDecodeLikeJSONMarshal(f *testing.F) {
	f.Add("Content-Type", "application/json", "X-Odd", `a'b"c\d?`)
	f.Add("nul\x00", "tab\t\n\r", "bad utf8 \xff\xfe", "emoji \U0001F600 \u2028 <&>")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := map[string]string{k1: v1, k2: v2}
		var c columns
		got, want := map[string]string{}, map[string]string{}
		if err := json.Unmarshal([]byte(c.headers(h)), &got); err != nil {
			t.Fatalf("headers(%q) = %s: %v", h, c.headers(h), err)
		}
		std, _ := json.Marshal(h)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("headers(%q) decodes to %q; encoding/json's to %q", h, got, want)
		}
	})
}

func TestHeadersOfNilIsNull(t *testing.T) {
	var c columns
	if got := c.headers(nil); got != "null" {
		t.Errorf("headers(nil) = %s; want null", got)
	}
	if got := c.headers(map[string]string{}); got != "{}" {
		t.Errorf("headers(empty) = %s; want {}", got)
	}
	if got := c.headers(map[string]string{"b": "2", "a": "1"}); got != `{"a":"1","b":"2"}` {
		t.Errorf("headers = %s; want sorted keys", got)
	}
}
