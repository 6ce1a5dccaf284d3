/*
Copyright 2026 The dfns-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command demo-app is what an application does with a Secret written by dfns-operator: it
// reads DFNS_API_URL, DFNS_ORG_ID, DFNS_AUTH_TOKEN, DFNS_CRED_ID and DFNS_PRIVATE_KEY from its
// environment (envFrom) and makes user-action-signed Dfns calls as the service account:
// it registers a webhook and removes it again. DFNS_CA_FILE optionally names an extra CA
// (the local sandbox's). It prints IDs, never a token or key.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dfns-operator/dfns-operator/internal/dfns"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo-app:", err)
		os.Exit(1)
	}
}

func run() error {
	creds := dfns.Credentials{
		APIURL:        os.Getenv("DFNS_API_URL"),
		OrgID:         os.Getenv("DFNS_ORG_ID"),
		AuthToken:     os.Getenv("DFNS_AUTH_TOKEN"),
		CredID:        os.Getenv("DFNS_CRED_ID"),
		PrivateKeyPEM: []byte(os.Getenv("DFNS_PRIVATE_KEY")),
	}
	if file := os.Getenv("DFNS_CA_FILE"); file != "" {
		ca, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("reading DFNS_CA_FILE: %w", err)
		}
		creds.CACertPEM = ca
	}
	client, err := dfns.New(dfns.Options{Credentials: dfns.NewStaticCredentials(creds)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	wh, err := client.CreateWebhook(ctx, dfns.CreateWebhookRequest{
		URL:         "https://payments.example/dfns-events",
		Events:      []string{"wallet.transfer.confirmed"},
		Description: "created by demo-app with the service account's own token and key",
	})
	if err != nil {
		return fmt.Errorf("signed POST /webhooks as the service account: %w", err)
	}
	fmt.Printf("signed POST /webhooks as the service account: created %s\n", wh.ID)
	if err := client.DeleteWebhook(ctx, wh.ID); err != nil {
		return fmt.Errorf("signed DELETE /webhooks/%s: %w", wh.ID, err)
	}
	fmt.Printf("signed DELETE /webhooks/%s: deleted\n", wh.ID)
	return nil
}
