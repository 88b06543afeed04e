"""The exception desk: adjustments (调账) and reversals (冲正) one operator proposes and a second, different one
approves before anything is booked; every action recorded in the audit trail."""
