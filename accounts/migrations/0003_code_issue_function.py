"""accounts_code_issue: a login code's issue in one statement (dropped again by 0004: the send
limits now live only in accounts.services, issue 18).

accounts.services.code_request calls it outside a transaction: the locks, the send limits, the
code row and its outbox rows are one statement and one implicit transaction, one round trip where
the same steps from Python take four (bench/). The rules are the ones accounts.services applies
itself on other databases (_send_refusal); the tests run both ways. Other databases get nothing.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION accounts_code_issue(
    p_locks integer[],
    p_phone text,
    p_ip inet,
    p_code_hash text,
    p_ttl interval,
    p_cooldown interval,
    p_per_phone integer,
    p_per_ip integer,
    p_messages jsonb,
    OUT refused text,
    OUT anchor timestamptz,
    OUT issued_at timestamptz,
    OUT code_id bigint,
    OUT message_ids bigint[]
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    pair integer[];
    recent timestamptz[];
BEGIN
    -- (namespace, key) pairs in the caller's order: always the phone's, then the address's.
    FOREACH pair SLICE 1 IN ARRAY p_locks LOOP
        PERFORM pg_advisory_xact_lock(pair[1], pair[2]);
    END LOOP;
    -- Read under the locks, and each statement below sees what committed while we waited.
    issued_at := clock_timestamp();

    SELECT array_agg(created_at ORDER BY created_at DESC) INTO recent FROM (
        SELECT created_at FROM accounts_phonecode
        WHERE phone = p_phone AND created_at > issued_at - interval '1 hour'
        ORDER BY created_at DESC LIMIT p_per_phone
    ) AS by_phone;
    IF recent[1] > issued_at - p_cooldown THEN
        refused := 'cooldown';
        anchor := recent[1];
        RETURN;
    END IF;
    IF cardinality(recent) >= p_per_phone THEN
        refused := 'phone';
        anchor := recent[cardinality(recent)];
        RETURN;
    END IF;
    -- The address's cap-th newest code of the hour: there is one iff the address is at its cap.
    SELECT created_at INTO anchor FROM accounts_phonecode
    WHERE ip = p_ip AND created_at > issued_at - interval '1 hour'
    ORDER BY created_at DESC LIMIT 1 OFFSET p_per_ip - 1;
    IF anchor IS NOT NULL THEN
        refused := 'address';
        RETURN;
    END IF;

    INSERT INTO accounts_phonecode (phone, code_hash, ip, created_at, expires_at, attempts)
    VALUES (p_phone, p_code_hash, p_ip, issued_at, issued_at + p_ttl, 0)
    RETURNING id INTO code_id;
    -- The outbox rows, in the caller's order: [{"channel": ..., "recipient": ..., ...}, ...].
    WITH added AS (
        INSERT INTO notifications_message (
            channel, recipient, body, sensitive, status, attempts, last_error, provider_id,
            created_at, updated_at
        )
        SELECT m->>'channel', m->>'recipient', m->>'body', (m->>'sensitive')::boolean, m->>'status',
            (m->>'attempts')::integer, m->>'last_error', m->>'provider_id', issued_at, issued_at
        FROM jsonb_array_elements(p_messages) WITH ORDINALITY AS e (m, n)
        ORDER BY e.n
        RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO message_ids FROM added;
END
$$
"""

DROP = "DROP FUNCTION IF EXISTS accounts_code_issue"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_user_phone_field"),
        ("notifications", "0002_message_available_at"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
