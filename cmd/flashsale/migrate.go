package main

import (
	"context"
	"log/slog"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres"
)

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// Wait for PostgreSQL first (up to STARTUP_TIMEOUT_SECONDS), so that
	// only reaching it is retried, never a migration.
	startCtx, started := startupContext(ctx, cfg)
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
