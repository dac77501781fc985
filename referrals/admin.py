# Referral links are edited on the user page (accounts.admin), through inviter_set.
