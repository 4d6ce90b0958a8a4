from django.urls import path

from console.accounts import profile_views, sign_in_views, team_views, views

urlpatterns = [
    path("sign-in/", views.SignInView.as_view(), name="login"),
    path("sign-in/sso/", sign_in_views.oidc_start, name="oidc_start"),
    path("sign-in/sso/callback/", sign_in_views.oidc_callback, name="oidc_callback"),
    path("sign-in/second-factor/", sign_in_views.second_factor_sign_in, name="second_factor_sign_in"),
    path("sign-out/", views.SignOutView.as_view(), name="logout"),
    path("account/second-factor/", sign_in_views.second_factor_manage, name="second_factor"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("account/api-keys/", views.api_key_list, name="api_key_list"),
    path("account/time-zone/", profile_views.time_zone_set, name="time_zone_set"),
    path("account/api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("people/", views.person_list, name="person_list"),
    path("people/new/", views.person_create_view, name="person_create"),
    path("people/suggest/", views.person_suggest, name="person_suggest"),
    path("people/<int:pk>/", views.person_detail, name="person_detail"),
    path("people/<int:pk>/edit/", views.person_edit, name="person_edit"),
    path("people/<int:pk>/roles/", views.person_roles, name="person_roles"),
    path("people/<int:pk>/active/", views.person_active, name="person_active"),
    path("teams/", team_views.team_list, name="team_list"),
    path("teams/new/", team_views.team_create_view, name="team_create"),
    path("teams/suggest/", views.team_suggest, name="team_suggest"),
    path("teams/<int:pk>/", team_views.team_detail, name="team_detail"),
    path("teams/<int:pk>/members/", team_views.team_members, name="team_members"),
    path("teams/<int:pk>/delete/", team_views.team_delete_view, name="team_delete"),
    path("teams/<int:pk>/roles/", team_views.team_roles, name="team_roles"),
]
