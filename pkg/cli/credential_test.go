package cli

import (
	"strings"
	"testing"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestParseCredential(t *testing.T) {
	aws := "# comment\n[default]\naws_access_key_id=AKID\naws_secret_access_key = SECRET\n\n[profile backup]\naws_access_key_id = AKID2\naws_secret_access_key = S2\naws_session_token = TOK\n"
	got, err := parseCredential("aws", "default", []byte(aws))
	if err != nil || string(got[v1alpha1.S3AccessKeyID]) != "AKID" || string(got[v1alpha1.S3SecretAccessKey]) != "SECRET" || got[v1alpha1.S3SessionToken] != nil {
		t.Fatalf("aws default: %v %v", got, err)
	}
	got, err = parseCredential("aws", "backup", []byte(aws))
	if err != nil || string(got[v1alpha1.S3AccessKeyID]) != "AKID2" || string(got[v1alpha1.S3SessionToken]) != "TOK" {
		t.Fatalf("aws backup profile: %v %v", got, err)
	}
	got, err = parseCredential("azure", "", []byte("export AZURE_STORAGE_ACCOUNT_KEY=\"a2V5\"\n"))
	if err != nil || string(got[v1alpha1.AzureAccountKey]) != "a2V5" {
		t.Fatalf("azure key: %v %v", got, err)
	}
	got, err = parseCredential("azure", "", []byte("AZURE_TENANT_ID=t\nAZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=s\n"))
	if err != nil || string(got[v1alpha1.AzureClientSecret]) != "s" || string(got[v1alpha1.AzureTenantID]) != "t" {
		t.Fatalf("azure principal: %v %v", got, err)
	}
	key := `{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----"}`
	got, err = parseCredential("gcp", "", []byte(key))
	if err != nil || string(got[v1alpha1.GCSServiceAccountJSON]) != key {
		t.Fatalf("gcp: %v %v", got, err)
	}

	for _, tc := range []struct{ provider, profile, in, want string }{
		{"aws", "missing", aws, "no [missing] profile"},
		{"aws", "default", "[default]\naws_access_key_id=x\n", "needs aws_access_key_id and aws_secret_access_key"},
		{"azure", "", "AZURE_TENANT_ID=t\n", "AZURE_CLIENT_SECRET"},
		{"gcp", "", `{"type":"authorized_user","secret":"topsecret"}`, "not a service account JSON key"},
		{"gcp", "", `{not json "topsecret"`, "not a service account JSON key"},
		{"ibm", "", "", `--provider "ibm" is not one of aws, azure, gcp`},
		{"", "", "", "--provider is required"},
	} {
		_, err := parseCredential(tc.provider, tc.profile, []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: err = %v, want %q", tc.provider, tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%s: error quotes the file: %v", tc.provider, err)
		}
	}
}
