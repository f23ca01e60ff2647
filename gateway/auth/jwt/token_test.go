package jwt

import "testing"

func TestLooksLikeJWT(t *testing.T) {
	hdr := b64([]byte(`{"alg":"RS256","kid":"k"}`))
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"compact JWS", hdr + ".eyJzdWIiOiJ4In0.c2ln", true},
		{"unsigned (alg none) still routes to Verify", hdr + ".eyJzdWIiOiJ4In0.", true},
		{"header with leading space", b64([]byte(` {"alg":"RS256"}`)) + ".e30.c2ln", true},
		{"gateway token", "agw_0123456789abcdef_secretsecretsecret", false},
		{"opaque API key", "sk-proj-abcdefghijklmnop", false},
		{"two parts", hdr + ".e30", false},
		{"four parts", hdr + ".e30.c2ln.eA", false},
		{"empty header", ".e30.c2ln", false},
		{"empty payload", hdr + "..c2ln", false},
		{"header not an object", b64([]byte(`["x"]`)) + ".e30.c2ln", false},
		{"standard base64", "eyJh+GciOiJ9.e30.c2ln", false},
		{"padded", hdr + "=.e30.c2ln", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LooksLikeJWT(tt.in); got != tt.want {
				t.Errorf("LooksLikeJWT(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIssuerOf(t *testing.T) {
	hdr := b64([]byte(`{"alg":"RS256","kid":"k"}`))
	tests := []struct {
		name    string
		payload string
		want    string
		ok      bool
	}{
		{"plain", `{"iss":"https://idp.example/oauth2/default"}`, "https://idp.example/oauth2/default", true},
		{"trailing slash removed (Entra v1)", `{"iss":"https://sts.windows.net/tid/"}`, "https://sts.windows.net/tid", true},
		{"no iss", `{"sub":"x"}`, "", false},
		{"iss not a string", `{"iss":42}`, "", false},
		{"empty iss", `{"iss":""}`, "", false},
		{"not JSON", `iss`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := IssuerOf(hdr + "." + b64([]byte(tt.payload)) + ".c2ln")
			if got != tt.want || ok != tt.ok {
				t.Errorf("IssuerOf = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	t.Run("not a JWT", func(t *testing.T) {
		if _, ok := IssuerOf("agw_token"); ok {
			t.Error("ok for a non-JWT")
		}
	})
}
