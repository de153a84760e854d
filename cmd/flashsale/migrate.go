package main

import (
	"context"
	"log/slog"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres"
)

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := postgres.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	log.Info("database migrated")
	return nil
}
