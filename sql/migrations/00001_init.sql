-- +goose Up

-- btree_gist lets a GiST index compare plain uuids with =, which the
-- no-overlap EXCLUDE constraint on flash_sales needs next to its range.
-- It is a trusted extension (PostgreSQL 13+): the database owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    -- The application stores emails lower-case; the store lower()s them too.
    email         text        NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash text        NOT NULL,
    role          text        NOT NULL DEFAULT 'customer'
                              CONSTRAINT users_role_valid CHECK (role IN ('customer', 'admin')),
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    price_minor bigint      NOT NULL CONSTRAINT products_price_nonnegative CHECK (price_minor >= 0),
    currency    char(3)     NOT NULL,
    -- quantity is the stock left. This CHECK is the last line against
    -- overselling: even a wrong UPDATE cannot take it below zero.
    quantity    integer     NOT NULL CONSTRAINT products_quantity_nonnegative CHECK (quantity >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE flash_sales (
    id         uuid        PRIMARY KEY,
    product_id uuid        NOT NULL CONSTRAINT flash_sales_product_id_fkey REFERENCES products (id),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The window is half-open, [starts_at, ends_at), as in sale.Sale.OpenAt.
    CONSTRAINT flash_sales_window_valid CHECK (ends_at > starts_at),
    -- Two sales of one product never share an instant. '[)' makes a sale
    -- ending at T and the next starting at T adjacent, not overlapping.
    CONSTRAINT flash_sales_no_overlap EXCLUDE USING gist (
        product_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ),
    -- Target of the orders foreign key that ties an order's product to its sale's.
    CONSTRAINT flash_sales_id_product_id_key UNIQUE (id, product_id)
);

CREATE INDEX flash_sales_starts_at_id_idx ON flash_sales (starts_at, id);

CREATE TABLE orders (
    id            uuid        PRIMARY KEY,
    flash_sale_id uuid        NOT NULL,
    product_id    uuid        NOT NULL,
    user_id       uuid        NOT NULL CONSTRAINT orders_user_id_fkey REFERENCES users (id),
    status        text        NOT NULL DEFAULT 'confirmed'
                              CONSTRAINT orders_status_valid CHECK (status IN ('pending', 'confirmed', 'rejected')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- One unit per user per sale. The store maps a violation of this
    -- constraint, by name, to order.ErrAlreadyOrdered.
    CONSTRAINT orders_one_per_user_per_sale UNIQUE (flash_sale_id, user_id),
    -- The order's product is its sale's product. This also makes product_id
    -- reference products (through flash_sales) without a direct foreign key,
    -- whose check would take a KEY SHARE lock on the hot products row in every
    -- order transaction.
    CONSTRAINT orders_sale_product_fkey FOREIGN KEY (flash_sale_id, product_id)
        REFERENCES flash_sales (id, product_id)
);

-- A user's orders, newest first (ids are UUIDv7, so id order is time order).
CREATE INDEX orders_user_id_id_idx ON orders (user_id, id);

-- +goose Down

DROP TABLE orders;
DROP TABLE flash_sales;
DROP TABLE products;
DROP TABLE users;
-- btree_gist stays: it may have been there before, and other schemas may use it.
