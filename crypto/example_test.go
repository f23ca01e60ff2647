package crypto_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agw-dev/agw/crypto"
)

func ExampleParseToken() {
	// A token that lost its last character in a copy and paste.
	_, err := crypto.ParseToken("agw_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs2cnUE")
	fmt.Println(errors.Is(err, crypto.ErrMalformedToken))
	fmt.Println(err)

	id, err := crypto.ParseToken("agw_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs2cnUE8")
	fmt.Println(id, err)
	// Output:
	// true
	// malformed gateway token: it is 64 bytes long, want 65
	// 0123456789AB <nil>
}

func ExampleSecret() {
	key := crypto.NewSecret([]byte("sk-live-0123456789"))
	backend := struct {
		Name string
		Key  crypto.Secret
	}{"openai", key}

	fmt.Println(key)
	fmt.Printf("%+v\n", backend)
	b, _ := json.Marshal(backend)
	fmt.Println(string(b))
	// Output:
	// [redacted]
	// {Name:openai Key:[redacted]}
	// {"Name":"openai","Key":"[redacted]"}
}
