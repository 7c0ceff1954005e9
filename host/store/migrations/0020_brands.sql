-- White-label brands, one per partner (the `partner` of its keys and tenants): what the
-- dashboard shows a partner's tenants instead of Mission Control's name, logo and colours.
-- Values are checked by mc_config::BrandSpec before they are written.
CREATE TABLE brands (
    partner        TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    logo           TEXT,
    primary_color  TEXT NOT NULL,
    accent_color   TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX tenants_by_partner ON tenants (partner);
