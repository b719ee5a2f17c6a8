-- Redeeming looks a code up by its normalised text (upper case, no dashes or spaces, §4.9):
-- indexed, so a redeem does not read every code.
CREATE INDEX redemption_codes_normalised_idx ON redemption_codes (upper(replace(replace(code, '-', ''), ' ', '')));
