package o365sim

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// jwtParts is a decoded but not yet verified compact JWT.
type jwtParts struct {
	header       map[string]any
	claims       map[string]any
	signingInput string
	sig          []byte
}

func parseJWT(tok string) (*jwtParts, error) {
	segs := strings.Split(tok, ".")
	if len(segs) != 3 {
		return nil, errors.New("not a compact JWT")
	}
	var p jwtParts
	for i, dst := range []*map[string]any{&p.header, &p.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(segs[i])
		if err != nil {
			return nil, fmt.Errorf("decoding JWT segment %d: %w", i, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			return nil, fmt.Errorf("parsing JWT segment %d: %w", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(segs[2])
	if err != nil {
		return nil, fmt.Errorf("decoding JWT signature: %w", err)
	}
	p.signingInput = segs[0] + "." + segs[1]
	p.sig = sig
	return &p, nil
}

func (p *jwtParts) headerString(k string) string { s, _ := p.header[k].(string); return s }
func (p *jwtParts) claimString(k string) string  { s, _ := p.claims[k].(string); return s }

// claimInt reads a NumericDate claim; ok is false when absent or not a number.
func (p *jwtParts) claimInt(k string) (int64, bool) {
	n, ok := p.claims[k].(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	return int64(f), err == nil
}

// verifyRSA checks an RS256 or PS256 signature: MSAL >= 1.4.2 signs with
// PS256, older MSAL, ADAL and the doc sample with RS256 (mgmt-api §2.3).
func (p *jwtParts) verifyRSA(pub *rsa.PublicKey) error {
	sum := sha256.Sum256([]byte(p.signingInput))
	switch alg := p.headerString("alg"); alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], p.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], p.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("unsupported alg %q", alg)
	}
}

func (p *jwtParts) verifyHS256(key []byte) error {
	if p.headerString("alg") != "HS256" {
		return errors.New("unexpected alg")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p.signingInput))
	if subtle.ConstantTimeCompare(m.Sum(nil), p.sig) != 1 {
		return errors.New("bad signature")
	}
	return nil
}

func signHS256(key []byte, header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// decodeAnyBase64 accepts std or url base64, padded or not: MSAL sends the
// thumbprint in standard base64 with padding, the doc sample in base64url
// (mgmt-api §2.3).
func decodeAnyBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}
