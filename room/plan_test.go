package room

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/task"
)

func taskDraft(title string, vis dealroom.Visibility) task.Draft {
	return task.Draft{Title: title, Visibility: vis}
}

// planStore is a store whose room has a plan of the given size: Execute
// runs the decision against it and appends nothing.
type planStore struct {
	Store // only what CreateTask uses is implemented
	stats PlanStats
}

type planView struct {
	View
	s *planStore
}

var planMembers = []Member{
	{UserID: "alice", Name: "Alice Rep", Kind: dealroom.Staff, Access: Write, RoleInRoom: Owner},
	{UserID: "carol", Name: "Carol Buyer", Kind: dealroom.Customer, Access: Write, RoleInRoom: PlainMember},
}

func (s *planStore) Execute(_ context.Context, cmd Command) (Executed, error) {
	d, err := cmd.Run(planView{s: s})
	return Executed{Event: d.Event, Result: d.Result}, err
}

func (s *planStore) Members(context.Context, string) ([]Member, error) { return planMembers, nil }

func (v planView) Room() (*Room, error)              { return &Room{ID: "r_plan", OwnerID: "alice"}, nil }
func (v planView) Member(id string) (*Member, error) { return FindMember(planMembers, id), nil }
func (v planView) Members() ([]Member, error)        { return planMembers, nil }
func (v planView) TaskStats() (PlanStats, error)     { return v.s.stats, nil }

// The limit of tasks is per visibility, so that a customer's refusal
// depends on shared tasks alone: a plan full of internal tasks does not
// stop a customer, and a refusal names the limit met.
func TestTaskLimitPerVisibility(t *testing.T) {
	carol := dealroom.Actor{ID: "carol", Name: "Carol Buyer", Kind: dealroom.Customer}
	st := &planStore{}
	st.stats.Internal = TaskTally{Count: MaxTasks, Last: MaxTasks}
	st.stats.Shared = TaskTally{Count: 3, Last: 3}
	svc := &Service{Store: st}
	ctx := context.Background()

	res, err := svc.CreateTask(ctx, carol, "r_plan", taskDraft("Security questionnaire", ""), "")
	require.NoError(t, err, "a full internal plan does not stop the customer")
	assert.Equal(t, 4.0, res.Position, "after the last shared task")
	_, err = svc.CreateTask(ctx, alice, "r_plan", taskDraft("one more", dealroom.Internal), "")
	require.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err), "%v", err)
	assert.Contains(t, dealroom.ErrorMessage(err), "internal")
	res, err = svc.CreateTask(ctx, alice, "r_plan", taskDraft("shared one", ""), "")
	require.NoError(t, err)
	assert.Equal(t, float64(MaxTasks+1), res.Position, "staff's after the last task of all")

	st.stats.Shared.Count = MaxTasks
	_, err = svc.CreateTask(ctx, carol, "r_plan", taskDraft("Legal review", ""), "")
	require.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err))
	assert.Contains(t, dealroom.ErrorMessage(err), "shared")
	assert.NotContains(t, dealroom.ErrorMessage(err), "internal")
}
