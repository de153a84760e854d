-- name: UserCreate :one
INSERT INTO users (id, email, password_hash, role, disabled)
VALUES (@id, lower(@email), @password_hash, @role, @disabled)
RETURNING *;

-- name: UserGetByEmail :one
SELECT * FROM users WHERE email = lower(@email);

-- UserUpsertAdmin creates the admin, or promotes and re-enables the existing
-- account with that email and sets its password. The id is used only on create.
-- name: UserUpsertAdmin :one
INSERT INTO users (id, email, password_hash, role, disabled)
VALUES (@id, lower(@email), @password_hash, 'admin', false)
ON CONFLICT (email) DO UPDATE
SET password_hash = EXCLUDED.password_hash,
    role          = 'admin',
    disabled      = false
RETURNING *;

-- name: UserSetDisabled :execrows
UPDATE users SET disabled = @disabled WHERE id = @id;

-- UsersGet loads many users in one round trip (the batched UserByID).
-- name: UsersGet :many
SELECT * FROM users WHERE id = ANY(@ids::uuid[]);
