package resources

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
)

func init() {
	spec := bloblang.NewPluginSpec().
		Category("Parsing").
		Description(`
Parses the `+"`ClientIP`"+` field of an Office 365 audit record into an object. The field comes in many
shapes: `+"`1.2.3.4`, `1.2.3.4:12345`, `[1.2.3.4]:12345`, `[1.2.3.4]`, `2001:db8::abcd`, `[2001:db8::abcd]:12345`"+`,
`+"`[2001:db8::abcd]`, `::ffff:1.2.3.4`, `[::ffff:1.2.3.4]:12345`"+`, a host name such as `+"`localhost:12345`"+` and
malformed values such as `+"`ffff:10.11.0.229`"+`.

The result has `+"`ip`"+` (the address in canonical form) when the host is a valid IPv4 or IPv6
address, otherwise `+"`address`"+` (the host as given); and `+"`port`"+` (an integer) when one was present.
Null, empty and blank strings give null. The method never fails on a string.`).
		Example("", `root.client = this.ClientIP.o365_parse_client_ip()`,
			[2]string{`{"ClientIP":"[2001:db8::abcd]:12345"}`, `{"client":{"ip":"2001:db8::abcd","port":12345}}`},
			[2]string{`{"ClientIP":"localhost:12345"}`, `{"client":{"address":"localhost","port":12345}}`},
			[2]string{`{"ClientIP":"ffff:10.11.0.229"}`, `{"client":{"address":"ffff:10.11.0.229"}}`},
			[2]string{`{"ClientIP":null}`, `{"client":null}`},
		)
	bloblang.MustRegisterMethodV2("o365_parse_client_ip", spec,
		func(*bloblang.ParsedParams) (bloblang.Method, error) {
			return func(v any) (any, error) {
				if v == nil {
					return nil, nil
				}
				return parseClientIP(bloblang.ValueToString(v)), nil
			}, nil
		})
}

// parseClientIP returns {"ip"|"address": host, "port": int?}, or nil for a blank value.
func parseClientIP(raw string) map[string]any {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil
	}
	host, port, isIP := ParseClientIP(s)
	out := make(map[string]any, 2)
	if isIP {
		out["ip"] = host
	} else {
		out["address"] = host
	}
	if port >= 0 {
		out["port"] = int64(port)
	}
	return out
}

// ParseClientIP splits a non-blank, trimmed ClientIP value the way o365_parse_client_ip does:
// host is the address in canonical form when isIP, otherwise the host as given; port is -1 when
// there is none.
func ParseClientIP(s string) (host string, port int, isIP bool) {
	host, port = splitHostPort(s)
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.String(), port, true
	}
	return host, port, false
}

// splitHostPort is net.SplitHostPort made lenient: a port is optional, brackets are optional
// around an IPv6 address without a port, and anything it cannot make sense of is returned
// whole as the host with port -1.
func splitHostPort(s string) (host string, port int) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, -1
		}
		inner, rest := s[1:end], s[end+1:]
		if rest == "" {
			return inner, -1
		}
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			if n, ok := parsePort(p); ok {
				return inner, n
			}
		}
		return s, -1
	}
	// More than one colon without brackets is an IPv6 address (or garbage), never host:port.
	if strings.Count(s, ":") == 1 {
		h, p, _ := strings.Cut(s, ":")
		if n, ok := parsePort(p); ok && h != "" {
			return h, n
		}
	}
	return s, -1
}

func parsePort(p string) (int, bool) {
	if p == "" || len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n > 65535 {
		return 0, false
	}
	return n, true
}
