
-- Raised inside the statement that holds a call's budgets when one of them refuses: the whole
-- statement is undone, so a reservation is one statement and one round trip.
CREATE FUNCTION mc_budget_refused() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'a budget refused the reservation';
END
$$;
