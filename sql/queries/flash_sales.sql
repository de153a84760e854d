-- name: SaleCreate :one
INSERT INTO flash_sales (id, product_id, starts_at, ends_at)
VALUES (@id, @product_id, @starts_at, @ends_at)
RETURNING *;

-- name: SaleGet :one
SELECT * FROM flash_sales WHERE id = @id;

-- name: SaleListByProduct :many
SELECT * FROM flash_sales
WHERE product_id = @product_id
ORDER BY starts_at;

-- SaleOpen finds the sale whose half-open window [starts_at, ends_at)
-- contains now; the no-overlap constraint makes it unique.
-- name: SaleOpen :one
SELECT * FROM flash_sales
WHERE product_id = @product_id
  AND starts_at <= @now::timestamptz
  AND @now::timestamptz < ends_at;

-- SaleList selects the sales in any of the chosen phases at now, soonest
-- first. Paging is keyset on (starts_at, id) from the sale whose id is after;
-- a NULL after starts the list.
-- name: SaleList :many
SELECT * FROM flash_sales
WHERE (
       (@upcoming::boolean AND @now::timestamptz < starts_at)
    OR (@active::boolean AND starts_at <= @now::timestamptz AND @now::timestamptz < ends_at)
    OR (@ended::boolean AND ends_at <= @now::timestamptz)
  )
  AND (
       sqlc.narg(after)::uuid IS NULL
    OR (starts_at, id) > (SELECT a.starts_at, a.id FROM flash_sales a WHERE a.id = sqlc.narg(after)::uuid)
  )
ORDER BY starts_at, id
LIMIT @max;

-- SaleListEndingAfter lists the product's sales that end after the given
-- time, earliest start first.
-- name: SaleListEndingAfter :many
SELECT * FROM flash_sales
WHERE product_id = @product_id
  AND ends_at > @ended_after::timestamptz
ORDER BY starts_at;
