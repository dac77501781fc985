"""The fraud guard's statement on signup's path as a PL/pgSQL function, accounts_guard_check, for
the reason of 0009_code_functions: with client-side binding PostgreSQL planned the statement on
every request (0.16 ms planning against 0.05 ms running, EXPLAIN (ANALYZE, SUMMARY) on the
bench's shape); a function's plans are made once per connection, also behind a transaction
pooler. accounts.guard.guard_check documents the rules and turns the answer into refusals.

In order: an allow-list entry for the phone, a head of it (a prefix entry covers every number
that starts with it), the country or the address ends the check (allowed); else the latest end
of the conversion watch's active blocks of the country and the prefix (blocked); else the count:
each window's counter row (p_scopes, p_keys, p_starts, in that order: prefix, SMS hour, SMS day)
gains one while under its cap and comes back with its new count; a row at its cap is left as it
is and does not come back. The rows stay locked until the caller's transaction ends, so a
parallel request waits and then sees the count this one left; a refused request's counts roll
back with it.
"""

from django.db import migrations

GUARD_CHECK = """
CREATE OR REPLACE FUNCTION accounts_guard_check(
    p_phone text, p_heads text[], p_country text, p_prefix text, p_ip text, p_key text, p_now timestamptz,
    p_scopes text[], p_keys text[], p_starts timestamptz[], p_prefix_cap integer, p_hour_cap integer, p_day_cap integer
)
RETURNS TABLE (r_allowed boolean, r_blocked_until timestamptz, r_scopes text[], r_counts integer[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_until timestamptz;
BEGIN
    IF EXISTS (
        SELECT FROM accounts_guardallow AS entry
        WHERE (entry.kind = 'phone' AND entry.value = p_phone) OR (entry.kind = 'prefix' AND entry.value = ANY(p_heads))
            OR (entry.kind = 'country' AND entry.value = p_country)
            OR (entry.kind = 'address' AND entry.value IN (p_ip, p_key))
    ) THEN
        RETURN QUERY SELECT true, NULL::timestamptz, ARRAY[]::text[], ARRAY[]::integer[];
        RETURN;
    END IF;
    SELECT max(block.until) INTO v_until FROM accounts_guardblock AS block
    WHERE block.until > p_now AND ((block.scope = 'country' AND block.key = p_country)
        OR (block.scope = 'prefix' AND block.key = p_prefix));
    IF v_until IS NOT NULL THEN
        RETURN QUERY SELECT false, v_until, ARRAY[]::text[], ARRAY[]::integer[];
        RETURN;
    END IF;
    RETURN QUERY
    WITH counted AS (
        INSERT INTO accounts_guardcounter AS c (scope, key, start, count)
        SELECT w.scope, w.key, w.start, 1
        FROM unnest(p_scopes, p_keys, p_starts) WITH ORDINALITY AS w(scope, key, start, n)
        ORDER BY w.n
        ON CONFLICT (scope, key, start) DO UPDATE SET count = c.count + 1
        WHERE c.count < CASE c.scope WHEN 'prefix_hour' THEN p_prefix_cap WHEN 'sms_hour' THEN p_hour_cap
            ELSE p_day_cap END
        RETURNING c.scope, c.count
    )
    SELECT false, NULL::timestamptz, coalesce(array_agg(counted.scope::text), ARRAY[]::text[]),
        coalesce(array_agg(counted.count::integer), ARRAY[]::integer[])
    FROM counted;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_fraud_guard")]

    operations = [
        migrations.RunSQL(
            GUARD_CHECK,
            "DROP FUNCTION IF EXISTS accounts_guard_check(text, text[], text, text, text, text, timestamptz, "
            "text[], text[], timestamptz[], integer, integer, integer);",
        ),
    ]
