"""The compute bill of analytics and policy, and measured energy."""
