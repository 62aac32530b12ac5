//go:build tools

package deps
import (
 _ "github.com/gorilla/sessions"
 _ "github.com/gorilla/securecookie"
 _ "github.com/coreos/go-oidc/v3/oidc"
 _ "golang.org/x/oauth2"
 _ "github.com/redis/go-redis/v9"
 _ "github.com/jmoiron/sqlx"
 _ "github.com/jackc/pgx/v5/stdlib"
 _ "modernc.org/sqlite"
 _ "gopkg.in/yaml.v3"
 _ "github.com/go-jose/go-jose/v4"
 _ "github.com/zitadel/oidc/v3/pkg/op"
 _ "github.com/zitadel/oidc/v3/example/server/storage"
 _ "github.com/chromedp/chromedp"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/pressly/goose/v3"
 _ "github.com/google/uuid"
 _ "golang.org/x/crypto/hkdf"
)
