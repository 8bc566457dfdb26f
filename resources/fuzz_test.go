package resources

import (
	"net/netip"
	"testing"
)

func FuzzParseClientIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4:12345", "[1.2.3.4]:12345", "[2001:db8::abcd]:12345", "::ffff:1.2.3.4", "localhost:12345", "ffff:10.11.0.229", "[::1", "[]:", " ", "1.2.3.4:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := parseClientIP(raw)
		if out == nil {
			return
		}
		if ip, ok := out["ip"].(string); ok {
			if _, err := netip.ParseAddr(ip); err != nil {
				t.Fatalf("parseClientIP(%q) ip %q does not parse: %v", raw, ip, err)
			}
		} else if _, ok := out["address"]; !ok {
			t.Fatalf("parseClientIP(%q) = %v: neither ip nor address", raw, out)
		}
		if p, ok := out["port"].(int64); ok && (p < 0 || p > 65535) {
			t.Fatalf("parseClientIP(%q) port %d out of range", raw, p)
		}
	})
}
