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

-- UsersGet loads many users in one round trip (the batched UserStanding).
-- name: UsersGet :many
SELECT * FROM users WHERE id = ANY(@ids::uuid[]);

-- UserStandings is what the in-memory user directory starts from.
-- name: UserStandings :many
SELECT id, role, disabled FROM users;

-- UsersHeartbeat is a user directory's heartbeat: the directory trusts
-- itself only while its own heartbeats come back on the users channel.
-- name: UsersHeartbeat :exec
SELECT pg_notify('flashsale_users', @payload::text);
