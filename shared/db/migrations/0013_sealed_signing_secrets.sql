-- Signing secrets are sealed by Vault's transit engine, bound to their row's
-- id; the API seals any still stored as plain whsec_ text when it starts.
COMMENT ON COLUMN inbox_credentials.secret IS
    'HMAC only: the signing secret sealed by Vault transit (vault:v<n>:...),'
    ' bound to this row''s id; plain whsec_ text until the API seals it';
