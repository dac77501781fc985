"""The login code's two hot statements as PL/pgSQL functions: accounts_code_try (a login's try)
and accounts_send_limits (what signup's send limits read).

Why functions: with client-side parameter binding (the default, so that PgBouncer in transaction
mode works) every statement is parsed and planned on every request, and planning these cost more
than running them: the try 0.53 of 0.59 ms, the limits 0.25 of 0.27 ms (pgbench -M simple vs
-M prepared on the bench's data, issue 18). PostgreSQL plans a function's statements once per
connection and reuses the plan, which works behind a transaction pooler. Each takes its advisory
locks itself and reads the clock under them (clock_timestamp() after the locks): a VOLATILE
function's statements each take a new snapshot, so a call that waited for a lock sees what the
holder committed. The callers (accounts.services) run them inside a transaction, which keeps the
locks until it ends. These are the one place the rules' SQL is written; the services document
the rules and turn the answers into refusals.
"""

from django.db import migrations

CODE_TRY = """
CREATE OR REPLACE FUNCTION accounts_code_try(
    p_lock integer, p_phone varchar, p_hash varchar, p_key varchar,
    p_max integer, p_max_per_ip integer, p_ip_cap integer
)
RETURNS TABLE (r_matched boolean, r_capped_at timestamptz, r_now timestamptz, r_user accounts_user)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(4, p_lock);  -- project.db.LOCK_OTP_TRY_IP
    v_now := clock_timestamp();
    RETURN QUERY
    WITH capped AS (
        SELECT wrong.created_at FROM accounts_wrongtry AS wrong
        WHERE wrong.ip_key = p_key AND wrong.created_at > v_now - interval '1 hour'
        ORDER BY wrong.created_at DESC OFFSET p_ip_cap - 1 LIMIT 1
    ), tried AS (
        UPDATE accounts_phonecode AS code SET attempts = code.attempts + 1,
            consumed_at = CASE WHEN code.code_hash = p_hash THEN v_now ELSE NULL END
        WHERE code.id = (
            SELECT latest.id FROM accounts_phonecode AS latest WHERE latest.phone = p_phone
            ORDER BY latest.created_at DESC LIMIT 1
        )
            AND code.consumed_at IS NULL AND code.expires_at > v_now AND code.attempts < p_max
            AND NOT EXISTS (SELECT FROM capped)
            AND (
                SELECT count(*) FROM accounts_wrongtry AS mine WHERE mine.code_id = code.id AND mine.ip_key = p_key
            ) < p_max_per_ip
        RETURNING code.id, code.consumed_at IS NOT NULL AS matched
    ), recorded AS (
        INSERT INTO accounts_wrongtry (code_id, ip_key, created_at)
        SELECT tried.id, p_key, v_now FROM tried WHERE NOT tried.matched
    )
    SELECT outcome.matched, outcome.capped_at, v_now, account
    FROM (SELECT (SELECT tried.matched FROM tried) AS matched, (SELECT capped.created_at FROM capped) AS capped_at)
        AS outcome
    LEFT JOIN accounts_user AS account ON outcome.matched AND account.phone = p_phone;
END
$$;
"""

SEND_LIMITS = """
CREATE OR REPLACE FUNCTION accounts_send_limits(
    p_phone_lock integer, p_ip_lock integer, p_phone varchar, p_key varchar, p_per_phone integer, p_per_ip integer
)
RETURNS TABLE (r_now timestamptz, r_recent timestamptz[], r_ours timestamptz[], r_capped_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now timestamptz;
BEGIN
    -- project.db.LOCK_OTP_PHONE, then LOCK_OTP_IP: always phone, then address.
    PERFORM pg_advisory_xact_lock(1, p_phone_lock);
    PERFORM pg_advisory_xact_lock(2, p_ip_lock);
    v_now := clock_timestamp();
    RETURN QUERY
    WITH by_phone AS (
        SELECT code.created_at, code.ip_key = p_key AS mine FROM accounts_phonecode AS code
        WHERE code.phone = p_phone AND code.created_at > v_now - interval '1 hour'
        ORDER BY code.created_at DESC LIMIT p_per_phone
    )
    SELECT v_now,
        ARRAY(SELECT by_phone.created_at FROM by_phone ORDER BY by_phone.created_at DESC),
        ARRAY(SELECT by_phone.created_at FROM by_phone WHERE by_phone.mine ORDER BY by_phone.created_at DESC),
        (
            SELECT code.created_at FROM accounts_phonecode AS code
            WHERE code.ip_key = p_key AND code.created_at > v_now - interval '1 hour'
            ORDER BY code.created_at DESC OFFSET p_per_ip - 1 LIMIT 1
        );
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0008_sessions_end_once")]

    operations = [
        migrations.RunSQL(
            CODE_TRY,
            "DROP FUNCTION IF EXISTS accounts_code_try(integer, varchar, varchar, varchar, integer, integer, integer);",
        ),
        migrations.RunSQL(
            SEND_LIMITS,
            "DROP FUNCTION IF EXISTS accounts_send_limits(integer, integer, varchar, varchar, integer, integer);",
        ),
    ]
