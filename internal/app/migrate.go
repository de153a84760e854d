package app

import (
	"context"
	"log/slog"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres"
)

// Migrate brings the schema of DATABASE_URL up to date (`flashsale
// migrate`). It waits for PostgreSQL first, up to STARTUP_TIMEOUT_SECONDS,
// so that only reaching it is retried, never a migration.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	startCtx, started := context.WithTimeout(ctx, cfg.StartupTimeout())
	store, err := connectPostgres(startCtx, cfg, log)
	started()
	if err != nil {
		return err
	}
	store.Close()
	if err := postgres.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	log.Info("database migrated")
	return nil
}
