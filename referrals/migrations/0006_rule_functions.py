"""The referral rules' two statements as PL/pgSQL functions, as referrals_profile (0005):
referrals_cycle (would a link close a cycle) and referrals_signals (the database's part of a new
referral's fraud signals). Sent as statements with client-side binding (the default, so that a
transaction pooler works) they were planned on every PATCH, and planning cost more than running
them: the signals 0.29 of 0.45 ms, the cycle check 0.12 of 0.25 ms (pgbench -M simple vs
-M prepared on the bench's data, issue 18). A function's statements are planned once per server
connection. referrals.services calls them; they are the one place these rules' SQL is written.
"""

from django.db import migrations

CYCLE = """
CREATE OR REPLACE FUNCTION referrals_cycle(p_user bigint, p_inviter bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- Walks up from the proposed inviter through their inviters; hits the user iff the link
    -- would close a cycle. UNION (not UNION ALL) stops on a cycle already in the data.
    RETURN EXISTS (
        WITH RECURSIVE chain(id) AS (
            SELECT link.inviter_id FROM referrals_referral AS link WHERE link.invitee_id = p_inviter
            UNION
            SELECT up.inviter_id FROM referrals_referral AS up JOIN chain ON up.invitee_id = chain.id
        )
        SELECT 1 FROM chain WHERE chain.id = p_user
    );
END
$$;
"""

# The client address of a login code as the signals compare it: IPv4 whole, IPv6 by its /64.
SIGNALS = """
CREATE OR REPLACE FUNCTION referrals_signals(
    p_invitee bigint, p_inviter bigint, p_inviter_phone varchar, p_since timestamptz, p_hour_ago timestamptz
)
RETURNS TABLE (r_invitee_phone varchar, r_shared_address boolean, r_last_hour bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_phone varchar;
BEGIN
    SELECT account.phone INTO v_phone FROM accounts_user AS account WHERE account.id = p_invitee;
    RETURN QUERY SELECT
        v_phone,
        EXISTS (
            SELECT 1 FROM accounts_phonecode AS a JOIN accounts_phonecode AS b
                ON network(set_masklen(a.ip, CASE family(a.ip) WHEN 6 THEN 64 ELSE 32 END))
                 = network(set_masklen(b.ip, CASE family(b.ip) WHEN 6 THEN 64 ELSE 32 END))
            WHERE a.phone = v_phone AND a.created_at >= p_since AND a.ip IS NOT NULL
                AND b.phone = p_inviter_phone AND b.created_at >= p_since AND b.ip IS NOT NULL
        ),
        (
            SELECT count(*) FROM referrals_referral AS link
            WHERE link.inviter_id = p_inviter AND link.created_at > p_hour_ago
        );
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("referrals", "0005_profile_function"), ("accounts", "0009_code_functions")]

    operations = [
        migrations.RunSQL(CYCLE, "DROP FUNCTION IF EXISTS referrals_cycle(bigint, bigint);"),
        migrations.RunSQL(
            SIGNALS,
            "DROP FUNCTION IF EXISTS referrals_signals(bigint, bigint, varchar, timestamptz, timestamptz);",
        ),
    ]
